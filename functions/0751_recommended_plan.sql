-- The cheapest plan whose limits cover the user's projected usage of every kind this billing period.
-- Called by upgrade prompts and insights and the Python client's recommended_plan(); no row when no plan covers it.
create or replace function tally.recommended_plan(user_id text, lookback_days integer default 7, at timestamptz default now())
returns table (
  plan          text,
  tier          integer,
  monthly_price numeric,
  current_plan  text,
  is_current    boolean
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  with need as (
    select f.kind, f.projected from tally.quota_forecast(recommended_plan.user_id, lookback_days, recommended_plan.at) f
     where f.projected > 0
  )
  select p.plan, p.tier, p.monthly_price, tally.plan_at(recommended_plan.user_id, recommended_plan.at),
         p.plan is not distinct from tally.plan_at(recommended_plan.user_id, recommended_plan.at)
    from tally.plans p
   where not exists (
           select from need n
             join tally.plan_limits l on l.plan = p.plan and l.kind = n.kind
            where l.monthly_limit < n.projected)
   order by p.monthly_price, p.tier desc, p.plan
   limit 1
$$;

comment on function tally.recommended_plan(text, integer, timestamptz) is
  'Cheapest plan (then highest tier, then name) whose per-kind limits cover the projected usage of every kind this period (see tally.quota_forecast; a kind without a limit is covered); is_current tells whether it is the plan in force. No row when no plan covers the projection.';
