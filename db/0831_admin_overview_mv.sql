-- Platform headline figures per timeframe (24h, 7d, 30d, all) and plan: users, events, attempts, cost (paying users are read live).
-- Refreshed by tally.refresh_analytics; read by tally.admin_overview.
create materialized view tally.admin_overview_mv as
select w.time_window, o.plan, o.users, o.events, o.succeeded, o.failures, o.duration_ms, o.cost, o.billable_cost,
       o.first_at, o.last_at, o.window_start, o.window_end
  from tally._analytics_windows(statement_timestamp()) w
 cross join lateral tally._analytics_overview(w.from_at, w.to_at) o;

comment on materialized view tally.admin_overview_mv is
  'Platform headline figures per timeframe (24h, 7d, 30d ending at the refresh; all) and plan in force (''*'' = all plans, one row per timeframe even without usage): users, events (net of reversals), succeeded and failed attempts, total duration, cost, billable cost, first and last use, window_start/window_end. Read through tally.admin_overview, which adds the paying users from the subscriptions at call time.';

create unique index admin_overview_mv_key on tally.admin_overview_mv (time_window, plan);
