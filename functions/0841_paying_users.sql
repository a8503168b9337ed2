-- Paying users over a span of time: distinct users with a subscription at a monthly price above zero (to one plan, or any) in force at some moment of [from_at, to_at).
-- Called by tally.admin_overview (over its window) and tally.admin_week_over_week (per window of weeks).
create or replace function tally._paying_users(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  -- A subscription is in force over [started_at, ended_at); it overlaps [from_at, to_at)
  -- when it starts before to_at and has not ended by from_at. Subscriptions are few
  -- (one row per plan change), so this reads them at call time: exact, no refresh.
  select count(distinct s.user_id)
    from tally.subscriptions s
   where s.monthly_price > 0
     and s.started_at < _paying_users.to_at
     and (s.ended_at is null or s.ended_at > _paying_users.from_at)
     and (only_plan is null or s.plan = only_plan)
  );
end
$$;

comment on function tally._paying_users(timestamptz, timestamptz, text) is
  'Distinct users holding a subscription with monthly_price > 0 (the price fixed when it started; to only_plan when given) in force at some moment of [from_at, to_at); users on the default plan without a subscription never count (internal; read by the admin functions).';
