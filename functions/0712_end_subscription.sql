-- Ends a user's running subscription at a moment (default now); the user falls back to the default plan.
-- Called by the billing backend (cancellation, expiry) and the Python client's end_subscription().
create or replace function tally.end_subscription(user_id text, ended_at timestamptz default now())
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  running    record;
  old_tz     text;
  old_anchor integer;
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'user_id is required';
  elsif ended_at is null then
    raise exception using errcode = 'PT011', column = 'ended_at', message = 'ended_at is required';
  end if;
  perform tally._lock_user(end_subscription.user_id, 'subscription');
  old_tz := tally._user_time_zone(end_subscription.user_id);
  old_anchor := tally._period_anchor(end_subscription.user_id);
  select s.started_at into running
    from tally.subscriptions s
   where s.user_id = end_subscription.user_id and s.ended_at is null;
  if not found then
    return false;
  end if;
  if running.started_at >= end_subscription.ended_at then
    raise exception using errcode = 'PT011', column = 'ended_at',
      message = format('ended_at %s must be after the subscription''s start (%s)', end_subscription.ended_at, running.started_at);
  end if;
  update tally.subscriptions s set ended_at = end_subscription.ended_at
   where s.user_id = end_subscription.user_id and s.started_at = running.started_at;
  -- Billing periods fall back to the user's billing_anchor_day: re-bucket in this transaction.
  perform tally._sync_billing_anchor(end_subscription.user_id, old_tz, old_anchor);
  return true;
end
$$;

comment on function tally.end_subscription(text, timestamptz) is
  'Ends the user''s running subscription at ended_at (default now); returns false when none is running. The user''s billing periods go back to the billing_anchor_day setting at once (also when ended_at lies ahead), re-bucketed in the same transaction.';
