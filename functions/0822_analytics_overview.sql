-- Platform headline figures per plan over a window [from_at, to_at): users, events, attempts, duration, cost, first and last use.
-- Called by tally.admin_overview_mv (the named windows, at refresh) and by tally.admin_overview (a range of days).
create or replace function tally._analytics_overview(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns table (plan text, users bigint, events bigint, succeeded bigint, failures bigint, duration_ms numeric,
               cost numeric, billable_cost numeric, first_at timestamptz, last_at timestamptz,
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
    -- Every event has a kind, so the kind rows hold all the usage exactly once.
    select v.user_id, v.plan, v.events, v.succeeded, v.failures, v.duration_ms, v.cost, v.billable_cost,
           v.first_at, v.last_at
      from tally.user_daily_values v
     where v.dimension = 'kind' and v.day >= s.first_day and v.day < s.end_day
       and (only_plan is null or v.plan = only_plan)
    union all
    select d.user_id, d.plan, d.events, d.succeeded, d.failures, d.duration_ms, d.cost, d.billable_cost,
           d.first_at, d.last_at
      from tally._analytics_delta_values(from_at, to_at, 'kind') d
     where only_plan is null or d.plan = only_plan
  ), per_user as (
    select case when grouping(r.plan) = 1 then '*' else r.plan end as plan,
           sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
           sum(r.duration_ms) as duration_ms, sum(r.cost) as cost, sum(r.billable_cost) as billable_cost,
           min(r.first_at) as first_at, max(r.last_at) as last_at,
           sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
      from rows r
     group by grouping sets ((r.plan, r.user_id), (r.user_id))
  ), totals as (
    select u.plan, count(*) filter (where u.active) as users, sum(u.events)::bigint as events,
           sum(u.succeeded)::bigint as succeeded, sum(u.failures)::bigint as failures, sum(u.duration_ms) as duration_ms,
           sum(u.cost) as cost, sum(u.billable_cost) as billable_cost, min(u.first_at) as first_at,
           max(u.last_at) as last_at
      from per_user u
     group by u.plan
  )
  select t.plan, t.users, t.events, t.succeeded, t.failures, t.duration_ms, t.cost, t.billable_cost, t.first_at,
         t.last_at, s.window_start, s.window_end
    from totals t
  union all
  -- The whole platform has a row even in a window without usage.
  select '*', 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::numeric, 0::numeric, 0::numeric, null::timestamptz,
         null::timestamptz, s.window_start, s.window_end
   where not exists (select from totals t where t.plan = '*');
end
$$;

comment on function tally._analytics_overview(timestamptz, timestamptz, text) is
  'Platform headline figures over [from_at, to_at) per plan in force (''*'' = all plans, always present; '''' = none): users (with a succeeded or failed event), events (net of reversals), succeeded attempts, failures, duration, cost, billable cost, first and last use; window_start/window_end = the window read (see tally._analytics_span). Internal: no minimum group size applied.';
