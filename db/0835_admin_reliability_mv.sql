-- Reliability per timeframe, kind and format: success rate, average and percentile durations (from histograms).
-- Refreshed by tally.refresh_analytics; read by tally.admin_reliability and tally.admin_week_over_week.
create materialized view tally.admin_reliability_mv as
with windows as (
  select w.time_window, w.since from tally._analytics_windows() w
), attempts as (
  select w.time_window, o.kind, case when grouping(o.format) = 1 then '*' else o.format end as format,
         sum(o.succeeded)::bigint as succeeded, sum(o.failed)::bigint as failed,
         sum(o.timed_events)::bigint as timed_events, sum(o.duration_ms) as duration_ms,
         -- Distinct users with an attempt: the admin function hides smaller groups than the minimum.
         count(distinct o.user_id) filter (where o.succeeded > 0 or o.failed > 0) as users
    from tally.user_daily_ops o
    join windows w on w.since is null or o.day >= w.since
   group by grouping sets ((w.time_window, o.kind, o.format), (w.time_window, o.kind))
), histogram as (
  select w.time_window, h.kind, case when grouping(h.format) = 1 then '*' else h.format end as format, h.bucket,
         sum(h.events) as n
    from tally.user_daily_durations h
    join windows w on w.since is null or h.day >= w.since
   group by grouping sets ((w.time_window, h.kind, h.format, h.bucket), (w.time_window, h.kind, h.bucket))
), cumulative as (
  select h.*, sum(h.n) over (partition by h.time_window, h.kind, h.format order by h.bucket) as below,
         sum(h.n) over (partition by h.time_window, h.kind, h.format) as total
    from histogram h
), percentiles as (
  -- Nearest rank: the first bucket whose cumulative count reaches q * total.
  select c.time_window, c.kind, c.format,
         min(c.bucket) filter (where c.below >= 0.50 * c.total) as p50,
         min(c.bucket) filter (where c.below >= 0.95 * c.total) as p95,
         min(c.bucket) filter (where c.below >= 0.99 * c.total) as p99
    from cumulative c
   group by c.time_window, c.kind, c.format
)
select a.time_window, w.since as window_start, a.kind, a.format, a.succeeded, a.failed,
       round(100.0 * a.succeeded / nullif(a.succeeded + a.failed, 0), 2) as success_rate,
       a.timed_events,
       round(a.duration_ms / nullif(a.timed_events, 0))::bigint as avg_duration_ms,
       tally._duration_bucket_ms(p.p50) as p50_duration_ms,
       tally._duration_bucket_ms(p.p95) as p95_duration_ms,
       tally._duration_bucket_ms(p.p99) as p99_duration_ms,
       a.users
  from attempts a
  join windows w on w.time_window = a.time_window
  left join percentiles p on p.time_window = a.time_window and p.kind = a.kind and p.format = a.format;

comment on materialized view tally.admin_reliability_mv is
  'Per timeframe (24h, 7d, 30d: the days overlapping it; all), kind and format (attributes.format; '''' = none, ''*'' = all formats): succeeded and failed attempts, success rate %, average duration and p50/p95/p99 durations of succeeded events (from log-scale histograms, within 4.4%), users with an attempt. Read through tally.admin_reliability.';

create unique index admin_reliability_mv_key on tally.admin_reliability_mv (time_window, kind, format);
