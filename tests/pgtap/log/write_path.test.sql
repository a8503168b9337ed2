-- No way around the write path: an INSERT that sets recorded_at (the owner's, a superuser's, into the
-- parent or straight into a partition) is validated and deduplicated like any other; only
-- tally.record_usage_batch may skip the row trigger, and a hand-set batch token is refused.
begin;
select plan(41);

select ok(tests.result_of($$select tally.ensure_partitions('2026-03-01', '2026-03-01')$$) in ('0', '1'),
          'the 2026-03 partition exists');
create role t_dba login in role tally_owner;
create role t_producer login in role tally_writer;
grant usage on schema tests to t_producer;  -- the test helpers, for this transaction only

select tally.record_usage('o0', 'owner-u', 'tts', 5, '2026-03-02 10:00:00+00');

-- ---------------------------------------------------------------- superuser
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('s-neg', 'owner-u', 'tts', -5, '2026-03-02 10:00:00+00', '2026-03-02 10:00:00+00')$$,
                 'PT002', null, 'superuser: an INSERT that sets recorded_at is validated (negative quantity: PT002)');
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                               values ('s1', 'owner-u', 'tts', 10, '2026-03-03 10:00:00+00', '2001-01-01 00:00:00+00')
                               returning 1)
                    select count(*)::int from i$$, $$values (1)$$, 'superuser: a new event with recorded_at set is recorded');
select ok((select recorded_at > '2020-01-01' from tally.usage_events where event_id = 's1'),
          'the database sets recorded_at, whatever the INSERT said');
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                               values ('s1', 'owner-u', 'tts', 70, '2026-03-03 10:00:00+00', now()) returning 1)
                    select count(*)::int from i$$, $$values (0)$$,
                  'superuser: a duplicate event_id with recorded_at set is skipped without an error');
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                               values ('o0', 'owner-u', 'tts', 70, '2026-03-02 10:00:00+00', now()) returning 1)
                    select count(*)::int from i$$, $$values (0)$$,
                  'superuser: a copy of an event recorded by record_usage (a backfill) is skipped');
select is((select count(*)::int from tally.usage_events where event_id in ('s1', 'o0')), 2, 'one log row per event');

-- Straight into a partition: the row trigger is cloned to every partition.
select throws_ok($$insert into tally.usage_events_2026_03 (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('p-neg', 'owner-u', 'tts', -1, '2026-03-04 10:00:00+00', now())$$,
                 'PT002', null, 'superuser: an INSERT straight into a partition is validated');
select results_eq($$with i as (insert into tally.usage_events_2026_03 (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                               values ('s1', 'owner-u', 'tts', 70, '2026-03-03 10:00:00+00', now()) returning 1)
                    select count(*)::int from i$$, $$values (0)$$, 'and deduplicated');
select results_eq($$with i as (insert into tally.usage_events_default (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                               values ('p1', 'owner-u', 'tts', 3, '2025-01-04 10:00:00+00', now()) returning 1)
                    select count(*)::int from i$$, $$values (1)$$, 'a new event straight into the default partition is recorded');
select is((select count(*)::int from tally.pending_deltas where user_id = 'owner-u'), 3,
          'and every new event (o0, s1, p1) has its delta: 3');

-- A hand-set batch token.
select set_config('tally.batch_token', 'forged', true);
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('f1', 'owner-u', 'tts', -9, '2026-03-05 10:00:00+00', now())$$,
                 '42501', null, 'superuser: an INSERT under a forged tally.batch_token is refused');
select throws_ok($$insert into tally.usage_events_2026_03 (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('f1', 'owner-u', 'tts', -9, '2026-03-05 10:00:00+00', now())$$,
                 '42501', null, 'and so is one straight into a partition');
-- A token issued in another transaction is stale.
insert into tally.batch_tokens (token, xact) values ('stale', '3'::xid8);
select set_config('tally.batch_token', 'stale', true);
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('f1', 'owner-u', 'tts', -9, '2026-03-05 10:00:00+00', now())$$,
                 '42501', null, 'superuser: a token of another transaction is refused');
delete from tally.batch_tokens;
select set_config('tally.batch_token', '', true);
select is((select count(*)::int from tally.usage_events where event_id = 'f1'), 0, 'nothing of the refused inserts is stored');

-- ---------------------------------------------------------------- a member of tally_owner
set local role t_dba;
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('d-neg', 'owner-u', 'tts', -5, '2026-03-06 10:00:00+00', now())$$,
                 'PT002', null, 'owner: an INSERT that sets recorded_at is validated (PT002)');
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                               values ('d1', 'owner-u', 'tts', 20, '2026-03-06 10:00:00+00', now()),
                                      ('d1', 'owner-u', 'tts', 20, '2026-03-06 10:00:00+00', now()),
                                      ('s1', 'owner-u', 'tts', 70, '2026-03-03 10:00:00+00', now()) returning 1)
                    select count(*)::int from i$$, $$values (1)$$,
                  'owner: of d1 twice and the recorded s1, only the first d1 is recorded');
select throws_ok($$insert into tally.usage_events_2026_03 (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('d-neg', 'owner-u', 'tts', -5, '2026-03-06 10:00:00+00', now())$$,
                 'PT002', null, 'owner: an INSERT straight into a partition is validated');
select set_config('tally.batch_token', 'forged', true);
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('f2', 'owner-u', 'tts', 1, '2026-03-06 10:00:00+00', now())$$,
                 '42501', null, 'owner: an INSERT under a forged tally.batch_token is refused');
select set_config('tally.batch_token', '', true);
reset role;
select is((select string_agg(event_id || ':' || quantity, ',' order by event_id) from tally.usage_events
            where user_id = 'owner-u'), 'd1:20,o0:5,p1:3,s1:10', 'the log holds each event once, as first recorded');

-- ---------------------------------------------------------------- a writer
set local role t_producer;
select set_config('tally.batch_token', 'forged', true);
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at)
                   values ('w1', 'writer-u', 'tts', 1, '2026-03-07 10:00:00+00')$$,
                 '42501', null, 'writer: an INSERT under a hand-set tally.batch_token is refused');
select throws_ok($$select tally.record_usage('w1', 'writer-u', 'tts', 1, '2026-03-07 10:00:00+00')$$,
                 '42501', null, 'writer: so is record_usage');
select is(tests.batch(array['w1', 'w2'], 'writer-u', array[1, 2]::bigint[],
                      occurred_ats => array['2026-03-07 10:00:00+00', '2026-03-07 11:00:00+00']::timestamptz[]), 2,
          'writer: record_usage_batch issues its own token and records');
select is(current_setting('tally.batch_token', true), '', 'the batch clears the setting after its INSERT');
select ok(tally.record_usage('w3', 'writer-u', 'tts', 4, '2026-03-07 12:00:00+00'), 'so plain inserts work again');
select is(tests.batch(array['w1', 'w2', 'w4', 'w4'], 'writer-u', array[1, 2, 8, 8]::bigint[],
                      occurred_ats => array['2026-03-07 10:00:00+00', '2026-03-07 11:00:00+00',
                                            '2026-03-07 13:00:00+00', '2026-03-07 13:00:00+00']::timestamptz[]), 1,
          'writer: the batch path is still exactly-once (w1, w2 recorded, w4 twice in the batch)');
select lives_ok($$select tally.begin_staging()$$, 'writer: begin_staging');
insert into pg_temp.tally_staging (event_id, user_id, kind, quantity, occurred_at)
values ('w5', 'writer-u', 'tts', 16, '2026-03-07 14:00:00+00'), ('w5', 'writer-u', 'tts', 16, '2026-03-07 14:00:00+00'),
       ('w1', 'writer-u', 'tts', 1, '2026-03-07 10:00:00+00');
select is(tally.record_usage_staged(), 1, 'writer: record_usage_staged records the new staged event once');
reset role;

-- After a batch in the same transaction, an owner's INSERT with recorded_at set is checked again.
select is(tests.batch(array['b1'], 'owner-u', array[1]::bigint[],
                      occurred_ats => array['2026-03-08 10:00:00+00']::timestamptz[]), 1, 'superuser: a batch records');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at, recorded_at)
                   values ('b-neg', 'owner-u', 'tts', -5, '2026-03-08 10:00:00+00', now())$$,
                 'PT002', null, 'an INSERT with recorded_at set after a batch in the same transaction is validated');
select is((select count(*)::int from tally.batch_tokens), 0, 'every issued token was consumed');

-- Moving rows out of the default partition keeps them (they are recorded already).
select ok(tally.ensure_partitions('2025-01-01', '2025-01-01') = 1, 'ensure_partitions creates 2025-01 and moves p1 there');
select is((select tableoid::regclass::text || ':' || quantity from tally.usage_events where event_id = 'p1'),
          'tally.usage_events_2025_01:3', 'p1 was moved, once');
select is((select count(*)::int from tally.usage_events_2025_01), 1, 'the new partition holds one row');
select ok(exists (select from pg_trigger where tgrelid = 'tally.usage_events_2025_01'::regclass
                    and tgname = 'usage_events_before_insert_check_batch_token'),
          'the new partition has its own batch-token check');

-- The aggregates equal a recomputation from the log (merged or not).
select results_eq($$select t.events::bigint, t.quantity::numeric from tally.lifetime_totals('owner-u', 'kind') t$$,
                  $$select count(*), sum(quantity) from tally.usage_events where user_id = 'owner-u'$$,
                  'owner-u: lifetime totals equal the log (pending)');
select results_eq($$select t.events::bigint, t.quantity::numeric from tally.lifetime_totals('writer-u', 'kind') t$$,
                  $$select count(*), sum(quantity) from tally.usage_events where user_id = 'writer-u'$$,
                  'writer-u: lifetime totals equal the log (pending)');
select lives_ok($$select tally.merge_pending()$$, 'merge');
select results_eq($$select t.user_id, t.events::bigint, t.quantity::numeric from tally.user_totals t
                     where t.dimension = 'kind' and t.user_id in ('owner-u', 'writer-u') order by 1$$,
                  $$select user_id, count(*), sum(quantity) from tally.usage_events
                     where user_id in ('owner-u', 'writer-u') group by 1 order by 1$$,
                  'merged rollups equal the log (owner-u: 5 events, quantity 39; writer-u: 5 events, quantity 31)');
select is((select string_agg(format('%s e%s q%s', user_id, events, quantity), ', ' order by user_id) from tally.user_totals
            where dimension = 'kind' and user_id in ('owner-u', 'writer-u')),
          'owner-u e5 q39, writer-u e5 q31', 'each event counted once: o0 s1 p1 d1 b1, w1 .. w5');
select is((select sum(drifted)::int from tally.verify()), 0, 'verify finds no drift');

select * from finish();
rollback;
