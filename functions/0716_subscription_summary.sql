-- Subscription history of a user, derived: current plan, months subscribed, highest tier reached, revenue to date.
-- Called by account and admin pages and the Python client's subscription_summary().
create or replace function tally.subscription_summary(user_id text, at timestamptz default now())
returns table (
  current_plan      text,
  subscribed_since  timestamptz,
  subscriptions     bigint,
  months_subscribed bigint,
  highest_tier      integer,
  highest_plan      text,
  revenue           numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Read before the query: on Citus it runs on the user's shard, where it may not call
  -- functions that read other distributed tables.
  user_tz   text := tally._user_time_zone(subscription_summary.user_id);
  plan_then text := tally.plan_at(subscription_summary.user_id, subscription_summary.at);
begin
  return query
  -- A subscription is charged its monthly price at its start and at each monthly
  -- anniversary (in the user's time zone) before it ends or before `at`.
  with subs as (
    select s.started_at, s.ended_at, s.plan, s.monthly_price, p.tier,
           tally._months_started(s.started_at at time zone tz.tz,
                                 least(coalesce(s.ended_at, subscription_summary.at), subscription_summary.at) at time zone tz.tz) as months
      from tally.subscriptions s
      join tally.plans p on p.plan = s.plan
     cross join (select user_tz as tz) as tz
     where s.user_id = subscription_summary.user_id and s.started_at <= subscription_summary.at
  )
  select plan_then,
         -- Start of the unbroken run of subscriptions in force at `at` (a plan change continues a run).
         case when exists (select from subs r where r.ended_at is null or r.ended_at > subscription_summary.at)
              then (select max(g.started_at) from subs g
                     where not exists (select from subs h where h.ended_at = g.started_at)) end,
         (select count(*) from subs),
         coalesce((select sum(x.months) from subs x), 0)::bigint,
         (select max(x.tier) from subs x),
         (select x.plan from subs x order by x.tier desc, x.started_at limit 1),
         coalesce((select sum(x.months * x.monthly_price) from subs x), 0);
end
$$;

comment on function tally.subscription_summary(text, timestamptz) is
  'A user''s subscriptions as of at: plan in force, start of the current unbroken run of subscriptions, count, billing months started, highest tier reached (and its plan), revenue to date (each subscription charges its monthly price at its start and every monthly anniversary in the user''s time zone).';
