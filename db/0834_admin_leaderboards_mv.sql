-- Leaderboards: totals per timeframe (24h, 7d, 30d, all), declared dimension and value (top voices, models, templates).
-- Refreshed by tally.refresh_analytics; read by tally.admin_leaderboard.
create materialized view tally.admin_leaderboards_mv as
with windows as (
  select w.time_window, w.since from tally._analytics_windows() w
), per_user as (
  -- Day-grained windows from the daily rollups, all time from the lifetime rollups.
  select w.time_window, d.dimension, d.value, d.user_id,
         sum(d.events) as events, sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms, sum(d.cost) as cost,
         bool_or(d.first_at is not null or d.failures > 0) as active
    from tally.user_daily d
    join windows w on d.day >= w.since
   where d.day >= (select min(x.since) from windows x)
   group by w.time_window, d.dimension, d.value, d.user_id
  union all
  select 'all', t.dimension, t.value, t.user_id, t.events, t.quantity, t.duration_ms, t.cost,
         t.first_at is not null or t.failures > 0
    from tally.user_totals t
), totals as (
  select p.time_window, p.dimension, p.value, sum(p.events)::bigint as events, sum(p.quantity) as quantity,
         sum(p.duration_ms) as duration_ms, sum(p.cost) as cost, count(*) filter (where p.active) as users
    from per_user p
   group by p.time_window, p.dimension, p.value
), ranked as (
  select t.*,
         rank() over (partition by t.time_window, t.dimension order by t.events desc)      as by_events,
         rank() over (partition by t.time_window, t.dimension order by t.quantity desc)    as by_quantity,
         rank() over (partition by t.time_window, t.dimension order by t.duration_ms desc) as by_duration,
         rank() over (partition by t.time_window, t.dimension order by t.cost desc)        as by_cost,
         rank() over (partition by t.time_window, t.dimension order by t.users desc)       as by_users
    from totals t
)
select r.time_window, w.since as window_start, r.dimension, r.value, r.events, r.quantity, r.duration_ms, r.cost,
       r.users::bigint
  from ranked r
  join windows w on w.time_window = r.time_window
 where least(r.by_events, r.by_quantity, r.by_duration, r.by_cost, r.by_users) <= 1000;

comment on materialized view tally.admin_leaderboards_mv is
  'Per timeframe (24h, 7d, 30d: the days overlapping it; all: lifetime), dimension and value: events, quantity, duration, cost and users; the top 1000 values by any of these per timeframe and dimension. Read through tally.admin_leaderboard.';

create unique index admin_leaderboards_mv_key on tally.admin_leaderboards_mv (time_window, dimension, value);
