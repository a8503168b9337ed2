-- Platform totals per plan, dimension and value over a window [from_at, to_at): usage, its unit and distinct users.
-- Called by tally.admin_totals_mv (the named windows, at refresh) and by tally.admin_totals / tally.admin_leaderboard (a range of days).
create or replace function tally._analytics_values(from_at timestamptz, to_at timestamptz, only_dimension text default null,
                                                   only_plan text default null)
returns table (plan text, dimension text, value text, events bigint, succeeded bigint, failures bigint, quantity numeric,
               unit text, duration_ms numeric, timed_events bigint, cost numeric, billable_cost numeric, users bigint,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  return query
  with rows as (
    -- Whole UTC days from the merged day table, the rest (pending deltas, partial days) folded alike.
    select v.user_id, v.plan, v.dimension, v.value, v.kind, v.events, v.succeeded, v.failures, v.quantity,
           v.duration_ms, v.timed_events, v.cost, v.billable_cost
      from tally.user_daily_values v
     where v.day >= s.first_day and v.day < s.end_day
       and (only_dimension is null or v.dimension = only_dimension)
       and (only_plan is null or v.plan = only_plan)
    union all
    select d.user_id, d.plan, d.dimension, d.value, d.kind, d.events, d.succeeded, d.failures, d.quantity,
           d.duration_ms, d.timed_events, d.cost, d.billable_cost
      from tally._analytics_delta_values(from_at, to_at, only_dimension) d
     where only_plan is null or d.plan = only_plan
  ), units as (
    -- The unit of each row's quantity (tally.kinds; a kind never declared counts in a unit of its own).
    select r.*, coalesce(k.unit, r.kind) as unit
      from rows r
      left join tally.kinds k on k.kind = r.kind
  ), per_user as (
    -- One row per user and group, so users are counted once per group (plan '*' = every plan).
    select case when grouping(r.plan) = 1 then '*' else r.plan end as plan, r.dimension, r.value,
           sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
           sum(r.quantity) as quantity, sum(r.duration_ms) as duration_ms, sum(r.timed_events) as timed_events,
           sum(r.cost) as cost, sum(r.billable_cost) as billable_cost,
           min(r.unit) filter (where r.quantity <> 0) as lo, max(r.unit) filter (where r.quantity <> 0) as hi,
           min(r.unit) as lo_any, max(r.unit) as hi_any,
           -- A user of a value: a succeeded or failed event of it in the window.
           sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
      from units r
     group by grouping sets ((r.plan, r.dimension, r.value, r.user_id), (r.dimension, r.value, r.user_id))
  ), groups as (
    select u.plan, u.dimension, u.value, sum(u.events)::bigint as events, sum(u.succeeded)::bigint as succeeded,
           sum(u.failures)::bigint as failures, sum(u.quantity) as quantity, min(u.lo) as lo, max(u.hi) as hi,
           min(u.lo_any) as lo_any, max(u.hi_any) as hi_any, sum(u.duration_ms) as duration_ms,
           sum(u.timed_events)::bigint as timed_events, sum(u.cost) as cost, sum(u.billable_cost) as billable_cost,
           count(*) filter (where u.active) as users
      from per_user u
     group by u.plan, u.dimension, u.value
  )
  -- Quantities of kinds of different units are never added: the quantity is NULL then.
  select g.plan, g.dimension, g.value, g.events, g.succeeded, g.failures,
         case when g.lo is distinct from g.hi then null else g.quantity end,
         case when g.lo is distinct from g.hi then null when g.lo is not null then g.lo
              when g.lo_any = g.hi_any then g.lo_any end,
         g.duration_ms, g.timed_events, g.cost, g.billable_cost, g.users, s.window_start, s.window_end
    from groups g;
end
$$;

comment on function tally._analytics_values(timestamptz, timestamptz, text, text) is
  'Platform totals over [from_at, to_at) per plan in force (''*'' = all plans, '''' = none), declared dimension and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (both NULL when the value''s non-zero quantities count in different units: they are never added), duration, timed events, cost, billable cost and users (with a succeeded or failed event of the value in the window); window_start/window_end = the window read (see tally._analytics_span). Internal: no minimum group size applied.';
