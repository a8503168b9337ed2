-- Leaderboards: the top values per timeframe (24h, 7d, 30d, all), plan and declared dimension (top voices, models, templates).
-- Refreshed by tally.refresh_analytics (after tally.admin_totals_mv, which it reads); read by tally.admin_leaderboard.
create materialized view tally.admin_leaderboards_mv as
with ranked as (
  -- A dimension may have millions of values (document ids, templates): keep the
  -- top 1000 by any metric, so a leaderboard reads at most a few thousand rows.
  select t.*,
         rank() over (partition by t.time_window, t.plan, t.dimension order by t.events desc)      as by_events,
         rank() over (partition by t.time_window, t.plan, t.dimension order by t.quantity desc nulls last) as by_quantity,
         rank() over (partition by t.time_window, t.plan, t.dimension order by t.duration_ms desc) as by_duration,
         rank() over (partition by t.time_window, t.plan, t.dimension order by t.cost desc)        as by_cost,
         rank() over (partition by t.time_window, t.plan, t.dimension order by t.users desc)       as by_users
    from tally.admin_totals_mv t
)
select r.time_window, r.plan, r.dimension, r.value, r.events, r.quantity, r.unit, r.duration_ms, r.cost, r.users,
       r.window_start, r.window_end
  from ranked r
 where least(r.by_events, r.by_quantity, r.by_duration, r.by_cost, r.by_users) <= 1000;

comment on materialized view tally.admin_leaderboards_mv is
  'Per timeframe (24h, 7d, 30d ending at the refresh; all), plan in force (''*'' = all plans) and dimension: the top 1000 values by events, quantity, duration, cost or users, with those figures and window_start/window_end. From tally.admin_totals_mv (refreshed before it). Read through tally.admin_leaderboard.';

create unique index admin_leaderboards_mv_key on tally.admin_leaderboards_mv (time_window, plan, dimension, value);
