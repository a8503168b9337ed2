-- Platform headline figures over a timeframe (24h, 7d, 30d, all, or UTC days [from_day, to_day)) and optionally one plan:
-- users, events, attempts and success rate, cost, paying users, averages. Called by dashboards, admin.overview() and `pgtally admin`.
create or replace function tally.admin_overview(time_window text default null, from_day date default null,
                                                to_day date default null, plan text default null)
returns table (users bigint, events bigint, succeeded bigint, failures bigint, success_rate numeric, duration_ms numeric,
               cost numeric, billable_cost numeric, paying_users bigint, avg_events_per_user numeric,
               avg_cost_per_user numeric, avg_cost_per_event numeric, first_at timestamptz, last_at timestamptz,
               window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  select * into r from tally._analytics_range(time_window, from_day, to_day, 'all');
  return query
  with o as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.users, m.events, m.succeeded, m.failures, m.duration_ms, m.cost, m.billable_cost, m.first_at, m.last_at,
           m.window_start, m.window_end, tally._refreshed_at('admin_overview_mv') as refreshed_at
      from tally.admin_overview_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
    union all
    select l.users, l.events, l.succeeded, l.failures, l.duration_ms, l.cost, l.billable_cost, l.first_at, l.last_at,
           l.window_start, l.window_end, statement_timestamp()
      from tally._analytics_overview(r.range_start, r.range_end, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  ), paying as (
    -- Paying users of the window (of the plan), read live from the subscriptions.
    select o.*, tally._paying_users(o.window_start, o.window_end, p) as paying from o
  )
  select o.users, o.events, o.succeeded, o.failures,
         round(100.0 * o.succeeded / nullif(o.succeeded + o.failures, 0), 2), o.duration_ms, o.cost, o.billable_cost,
         case when p is null or o.paying >= min_users or min_users <= 1 then o.paying else 0 end,
         round(o.events::numeric / nullif(o.users, 0), 2),
         round(o.cost / nullif(o.users, 0), 6),
         round(o.cost / nullif(o.events, 0), 6),
         o.first_at, o.last_at, nullif(o.window_start, '-infinity'), o.window_end, o.refreshed_at
    from paying o
   -- The whole platform is always shown; one plan is a group like any other: hidden (no row)
   -- when fewer users than the minimum group size used it in the window.
   where p is null or o.users >= min_users or min_users <= 1;
end
$$;

comment on function tally.admin_overview(text, date, date, text) is
  'Platform headline figures over a timeframe: a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all: everything before it; default all) as of refreshed_at, or the UTC days [from_day, to_day) computed at call time (refreshed_at = now); window_start/window_end say which (window_start NULL = from the beginning). users (with a succeeded or failed event), events (net of reversals), succeeded and failed attempts, success rate %, duration, cost, billable cost, averages per user and per event; paying_users (live): users with a subscription at a monthly price > 0 in force at some moment of the window. With plan: only events recorded under that plan (and its subscriptions); no row when fewer users than the minimum group size used it. Requires tally_analyst.';
