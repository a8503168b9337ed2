-- Users per step of the declared funnels per named timeframe (24h, 7d, 30d, all) and plan: the dashboard's funnel.
-- Refreshed by tally.refresh_analytics; read by tally.admin_funnel_window.
create materialized view tally.admin_funnel_mv as
select w.time_window, f.steps, pl.plan,
       tally._funnel_counts(f.steps, w.from_at, w.to_at, nullif(pl.plan, '*')) as users,
       w.from_at as window_start, w.to_at as window_end
  from tally._analytics_windows(statement_timestamp()) w
 cross join tally.dashboard_funnels f
 cross join (select '*'::text as plan union select p.plan from tally.plans p) pl;

comment on materialized view tally.admin_funnel_mv is
  'Per declared funnel (tally.dashboard_funnels), named timeframe (24h, 7d, 30d ending at the refresh; all) and plan in force (''*'' = every plan, or a plan of tally.plans): users[k] = the users who did steps 1..k in order inside the timeframe (as tally.admin_funnel counts them, before the minimum group size), window_start/window_end. Read through tally.admin_funnel_window, which applies the minimum group size.';

create unique index admin_funnel_mv_key on tally.admin_funnel_mv (time_window, steps, plan);
