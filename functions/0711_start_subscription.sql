-- Starts a user's subscription to a plan at a moment (default now), ending the running one there (a plan change).
-- Called by the billing backend (checkout completed, upgrade, downgrade) and the Python client's start_subscription().
create or replace function tally.start_subscription(user_id text, plan text, started_at timestamptz default now())
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  price      numeric;
  latest     record;
  old_tz     text;
  old_anchor integer;
begin
  if user_id is null or user_id = '' or length(user_id) > 200 then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'user_id is required (at most 200 characters)';
  elsif started_at is null or started_at < '2000-01-01 00:00:00+00' or started_at > statement_timestamp() + interval '1 day' then
    raise exception using errcode = 'PT011', column = 'started_at',
      message = format('started_at %s is out of range: it must lie between 2000-01-01 and one day from now', coalesce(started_at::text, 'null'));
  end if;
  select p.monthly_price into price from tally.plans p where p.plan = start_subscription.plan;
  if not found then
    raise exception using errcode = 'PT011', column = 'plan', message = format('plan %L does not exist', plan),
      hint = 'Create it with tally.upsert_plan.';
  end if;

  -- One writer of a user's subscriptions at a time, so they never overlap.
  perform tally._lock_user(start_subscription.user_id, 'subscription');
  old_tz := tally._user_time_zone(start_subscription.user_id);
  old_anchor := tally._period_anchor(start_subscription.user_id);
  select s.started_at, s.ended_at into latest
    from tally.subscriptions s
   where s.user_id = start_subscription.user_id
   order by s.started_at desc
   limit 1;
  if found then
    if latest.started_at >= start_subscription.started_at then
      raise exception using errcode = 'PT011', column = 'started_at',
        message = format('started_at %s must be after the start of the user''s latest subscription (%s)',
                         start_subscription.started_at, latest.started_at);
    elsif latest.ended_at is null or latest.ended_at > start_subscription.started_at then
      update tally.subscriptions s set ended_at = start_subscription.started_at
       where s.user_id = start_subscription.user_id and s.started_at = latest.started_at;
    end if;
  end if;
  insert into tally.subscriptions (user_id, started_at, plan, monthly_price, ended_at)
  values (start_subscription.user_id, start_subscription.started_at, start_subscription.plan, price, null);
  -- Billing periods now follow this subscription's start day: re-bucket in this transaction.
  perform tally._sync_billing_anchor(start_subscription.user_id, old_tz, old_anchor);
end
$$;

comment on function tally.start_subscription(text, text, timestamptz) is
  'Starts a subscription of a user to a plan at started_at (default now) at the plan''s current monthly price; a running subscription ends at that moment (plan change). started_at must follow the user''s latest subscription start. From then on the user''s billing periods start on the subscription''s day of month (local time); the rollups are re-bucketed in the same transaction.';
