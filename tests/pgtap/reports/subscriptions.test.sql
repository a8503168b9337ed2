-- Report subscriptions: readers subscribe their own user, a token unsubscribes, the rest is the owner's.
begin;
select plan(12);

create role t_sub_reader login in role tally_reader;
create role t_sub_writer login in role tally_writer;

set local role t_sub_reader;
select throws_ok($$select * from tally.subscribe_reports('a@example.com')$$, 'PT011', null,
                 'subscribing needs tally.user_id');
select set_config('tally.user_id', 'alice', true);
select throws_ok($$select * from tally.subscribe_reports('not an address')$$, 'PT011', null,
                 'a string that is not one address is refused');
select throws_ok($$select * from tally.subscribe_reports(E'a@example.com\nBcc: b@example.com')$$, 'PT011', null,
                 'an address with a line break (a header injection) is refused');
create temporary table t_token as select * from tally.subscribe_reports('alice@example.com');
select is((select user_id || ' ' || email_address from t_token), 'alice alice@example.com',
          'a reader subscribes its own user');
select ok((select unsubscribe_token ~ '^[A-Za-z0-9_-]{43}$' from t_token), 'the token is 32 bytes of base64url');
select is((select unsubscribe_token from tally.subscribe_reports('alice@other.example')),
          (select unsubscribe_token from t_token), 'subscribing again changes the address and keeps the token');
select set_config('tally.user_id', 'bob', true);
select lives_ok($$select * from tally.subscribe_reports('bob@example.com')$$, 'another user subscribes');
select is((select array_agg(user_id) from tally.report_subscriptions), array['bob'],
          'a reader sees its own subscription only');
select throws_ok($$insert into tally.report_subscriptions values ('carol', 'c@example.com', '\x00', now())$$,
                 '42501', null, 'readers write subscriptions only through the functions');

-- Unsubscribing needs only the token, even without tally.user_id.
select set_config('tally.user_id', '', true);
select is(tally.unsubscribe_reports('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), false, 'a wrong token does nothing');
select is(tally.unsubscribe_reports((select unsubscribe_token from t_token)), true, 'the right token unsubscribes');
reset role;

set local role t_sub_writer;
select throws_ok($$select tally.unsubscribe_reports('x')$$, '42501', null, 'writers do not manage subscriptions');
reset role;

select * from finish();
rollback;
