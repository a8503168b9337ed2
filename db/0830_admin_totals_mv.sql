-- Platform totals per timeframe (24h, 7d, 30d, all), plan, declared dimension and value (kind, voice, model, plan, ...).
-- Refreshed by tally.refresh_analytics; read by tally.admin_totals and tally.admin_leaderboards_mv.
create materialized view tally.admin_totals_mv as
select w.time_window, v.plan, v.dimension, v.value, v.events, v.succeeded, v.failures, v.quantity, v.unit, v.duration_ms,
       v.timed_events, v.cost, v.billable_cost, v.users, v.window_start, v.window_end
  -- The windows end when the refresh call started: every figure is as of then.
  from tally._analytics_windows(statement_timestamp()) w
 cross join lateral tally._analytics_values(w.from_at, w.to_at) v;

comment on materialized view tally.admin_totals_mv is
  'Platform totals per timeframe (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all: everything before it; window_start/window_end), plan in force (''*'' = all plans, '''' = none), declared dimension and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (NULL both when the value''s quantities count in different units), duration, timed events, cost, billable cost and users (with a succeeded or failed event of the value). From tally.user_daily_values plus pending deltas and the raw log of the partial days, so exact as of the refresh. Read through tally.admin_totals and tally.admin_leaderboard.';

create unique index admin_totals_mv_key on tally.admin_totals_mv (time_window, plan, dimension, value);
