-- Reliability per timeframe (24h, 7d, 30d, all), plan, kind and format: success rate, average and percentile durations (from histograms).
-- Refreshed by tally.refresh_analytics; read by tally.admin_reliability.
create materialized view tally.admin_reliability_mv as
select w.time_window, r.plan, r.kind, r.format, r.succeeded, r.failed,
       round(100.0 * r.succeeded / nullif(r.succeeded + r.failed, 0), 2) as success_rate,
       r.timed_events,
       round(r.duration_ms / nullif(r.timed_events, 0))::bigint as avg_duration_ms,
       tally._duration_bucket_ms(r.p50_bucket) as p50_duration_ms,
       tally._duration_bucket_ms(r.p95_bucket) as p95_duration_ms,
       tally._duration_bucket_ms(r.p99_bucket) as p99_duration_ms,
       r.users, r.window_start, r.window_end
  from tally._analytics_windows(statement_timestamp()) w
 cross join lateral tally._analytics_reliability(w.from_at, w.to_at) r;

comment on materialized view tally.admin_reliability_mv is
  'Per timeframe (24h, 7d, 30d ending at the refresh; all), plan in force (''*'' = all plans), kind and format (attributes.format; '''' = none, ''*'' = all formats): succeeded and failed attempts, success rate %, average duration and p50/p95/p99 durations of succeeded events (from log-scale histograms, within 4.4%), users with an attempt, window_start/window_end. Read through tally.admin_reliability.';

create unique index admin_reliability_mv_key on tally.admin_reliability_mv (time_window, plan, kind, format);
