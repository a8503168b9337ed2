-- Paying users over a span of time: distinct users with a subscription at a monthly price above zero in force at some moment of [from_at, to_at).
-- Called by tally.admin_overview (at the moment of the call) and tally.admin_week_over_week (per week).
create or replace function tally._paying_users(from_at timestamptz, to_at timestamptz)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- A subscription is in force over [started_at, ended_at); it overlaps [from_at, to_at)
  -- when it starts before to_at and has not ended by from_at. Subscriptions are few
  -- (one row per plan change), so this reads them at call time: exact, no refresh.
  select count(distinct s.user_id)
    from tally.subscriptions s
   where s.monthly_price > 0
     and s.started_at < _paying_users.to_at
     and (s.ended_at is null or s.ended_at > _paying_users.from_at)
$$;

comment on function tally._paying_users(timestamptz, timestamptz) is
  'Distinct users holding a subscription with monthly_price > 0 (the price fixed when it started) in force at some moment of [from_at, to_at); users on the default plan without a subscription never count (internal; read by the admin functions).';
