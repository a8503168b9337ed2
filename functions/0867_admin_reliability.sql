-- Reliability by kind and format in a timeframe: success rate, average and p50/p95/p99 durations.
-- Called by dashboards, admin.reliability() and `pgtally admin`.
create or replace function tally.admin_reliability(time_window text default '7d', only_kind text default null)
returns table (kind text, format text, succeeded bigint, failed bigint, success_rate numeric, timed_events bigint,
               avg_duration_ms bigint, p50_duration_ms bigint, p95_duration_ms bigint, p99_duration_ms bigint,
               window_start date, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._check_window(time_window);
  return query
  select r.kind, r.format, r.succeeded, r.failed, r.success_rate, r.timed_events, r.avg_duration_ms,
         r.p50_duration_ms, r.p95_duration_ms, r.p99_duration_ms, r.window_start,
         tally._refreshed_at('admin_reliability_mv')
    from tally.admin_reliability_mv r
   where r.time_window = admin_reliability.time_window
     -- Kinds and formats with fewer users than the minimum group size are left out.
     and (r.users >= min_users or min_users <= 1)
     and (only_kind is null or r.kind = only_kind)
   order by r.kind, r.format <> '*', r.format;
end
$$;

comment on function tally.admin_reliability(text, text) is
  'Per kind and format (attributes.format; ''*'' = all formats, first; '''' = none) in a timeframe (24h, 7d, 30d: days overlapping it; all): succeeded and failed attempts, success rate %, average, p50, p95 and p99 duration of succeeded events (histogram estimates within 4.4%). Kinds and formats with fewer users (with an attempt) than the minimum group size are left out. As of refreshed_at. Requires tally_analyst.';
