-- Subscribes the reader's own user (tally.user_id) to the monthly e-mail summary, or changes its address.
-- Called by application backends as tally_reader (the HTTP API's /subscribe); returns the token of the unsubscribe link.
create or replace function tally.subscribe_reports(email text)
returns table (user_id text, email_address text, unsubscribe_token text, subscribed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  uid     text := tally.current_user_id();
  address text := btrim(subscribe_reports.email);
  sub     tally.report_subscriptions;
begin
  if uid is null or uid = '' then
    raise exception using errcode = 'PT011', column = 'user_id',
      message = 'tally.user_id is not set: set it to the user who subscribes (set_config(''tally.user_id'', ..., true))';
  elsif length(uid) > 200 then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'tally.user_id is longer than 200 characters';
  elsif address is null or length(address) > 254
        -- One address: a local part, @, a domain with a dot; no spaces, controls, commas, quotes or angle brackets
        -- (so it cannot add a recipient or a header to the message).
        or address !~ '^[^@[:space:][:cntrl:],;<>"()\[\]\\]+@[^@[:space:][:cntrl:],;<>"()\[\]\\]+\.[^@[:space:][:cntrl:],;<>"()\[\]\\.]+$' then
    raise exception using errcode = 'PT011', column = 'email',
      message = format('email %L is not an e-mail address like name@example.com (at most 254 characters)',
                       left(subscribe_reports.email, 300));
  end if;

  -- A user subscribes once: a second call changes the address and keeps the token (links already sent stay valid).
  insert into tally.report_subscriptions as s (user_id, email, unsubscribe_token)
  values (uid, address, uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
  on conflict on constraint report_subscriptions_pkey do update set email = excluded.email
  returning s.* into sub;

  return query
  select sub.user_id, sub.email, rtrim(translate(encode(sub.unsubscribe_token, 'base64'), '+/', '-_'), '='),
         sub.created_at;
end
$$;

comment on function tally.subscribe_reports(text) is
  'Subscribes the user of the session (tally.user_id) to the monthly usage summary at email, or changes the address of an existing subscription (the unsubscribe token stays). Returns the user, the address, the unsubscribe token (43 characters of base64url: build the unsubscribe link with it) and when the user subscribed. PT011 names email when it is not one plain address, user_id when tally.user_id is not set.';
