-- Platform totals per dimension, plan, UTC day and value: the trend series (events per day per kind, voice, model, ...).
-- Refreshed by tally.refresh_analytics; read by tally.admin_trend and tally.admin_week_over_week.
create materialized view tally.admin_daily_mv as
with rows as (
  select v.user_id, v.day, v.plan, v.dimension, v.value, v.kind, v.events, v.succeeded, v.failures, v.quantity,
         v.duration_ms, v.cost
    from tally.user_daily_values v
  union all
  -- Pending deltas (no window bounds: every whole day).
  select d.user_id, d.day, d.plan, d.dimension, d.value, d.kind, d.events, d.succeeded, d.failures, d.quantity,
         d.duration_ms, d.cost
    from tally._analytics_delta_values('-infinity', 'infinity') d
), units as (
  -- The unit of each row's quantity (tally.kinds; a kind never declared counts in a unit of its own).
  select r.*, coalesce(k.unit, r.kind) as unit
    from rows r
    left join tally.kinds k on k.kind = r.kind
), per_user as (
  select case when grouping(r.plan) = 1 then '*' else r.plan end as plan, r.dimension, r.day, r.value,
         sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
         sum(r.quantity) as quantity, sum(r.duration_ms) as duration_ms, sum(r.cost) as cost,
         min(r.unit) filter (where r.quantity <> 0) as lo, max(r.unit) filter (where r.quantity <> 0) as hi,
         min(r.unit) as lo_any, max(r.unit) as hi_any,
         sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
    from units r
   group by grouping sets ((r.plan, r.dimension, r.day, r.value, r.user_id), (r.dimension, r.day, r.value, r.user_id))
), groups as (
  select u.dimension, u.plan, u.day, u.value, sum(u.events) as events, sum(u.succeeded) as succeeded,
         sum(u.failures) as failures, sum(u.quantity) as quantity, min(u.lo) as lo, max(u.hi) as hi,
         min(u.lo_any) as lo_any, max(u.hi_any) as hi_any, sum(u.duration_ms) as duration_ms, sum(u.cost) as cost,
         count(*) filter (where u.active) as users
    from per_user u
   group by u.dimension, u.plan, u.day, u.value
)
select g.dimension, g.plan, g.day, g.value,
       g.events::bigint    as events,
       g.succeeded::bigint as succeeded,
       g.failures::bigint  as failures,
       -- Quantities of kinds of different units are never added: NULL then.
       case when g.lo is distinct from g.hi then null else g.quantity end as quantity,
       case when g.lo is distinct from g.hi then null when g.lo is not null then g.lo
            when g.lo_any = g.hi_any then g.lo_any end as unit,
       g.duration_ms,
       g.cost,
       g.users
  from groups g;

comment on materialized view tally.admin_daily_mv is
  'Platform totals per dimension, plan in force (''*'' = all plans, '''' = none), UTC day and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (NULL both when the value''s quantities that day count in different units), duration, cost and users active with that value that day. From tally.user_daily_values plus pending deltas, as of the refresh. Read through tally.admin_trend and tally.admin_week_over_week.';

create unique index admin_daily_mv_key on tally.admin_daily_mv (dimension, plan, day, value);
