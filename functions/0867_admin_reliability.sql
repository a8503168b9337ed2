-- Reliability by kind and format in a timeframe (24h, 7d, 30d, all, or UTC days), optionally of one plan: success rate,
-- average and p50/p95/p99 durations. Called by dashboards, admin.reliability() and `pgtally admin`.
create or replace function tally.admin_reliability(time_window text default null, only_kind text default null,
                                                   from_day date default null, to_day date default null,
                                                   plan text default null)
returns table (kind text, format text, succeeded bigint, failed bigint, success_rate numeric, timed_events bigint,
               avg_duration_ms bigint, p50_duration_ms bigint, p95_duration_ms bigint, p99_duration_ms bigint,
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
  select * into r from tally._analytics_range(time_window, from_day, to_day, '7d');
  return query
  with x as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.kind, m.format, m.succeeded, m.failed, m.success_rate, m.timed_events, m.avg_duration_ms,
           m.p50_duration_ms, m.p95_duration_ms, m.p99_duration_ms, m.users, m.window_start, m.window_end,
           tally._refreshed_at('admin_reliability_mv') as refreshed_at
      from tally.admin_reliability_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
    union all
    select l.kind, l.format, l.succeeded, l.failed, round(100.0 * l.succeeded / nullif(l.succeeded + l.failed, 0), 2),
           l.timed_events, round(l.duration_ms / nullif(l.timed_events, 0))::bigint,
           tally._duration_bucket_ms(l.p50_bucket), tally._duration_bucket_ms(l.p95_bucket),
           tally._duration_bucket_ms(l.p99_bucket), l.users, l.window_start, l.window_end, statement_timestamp()
      from tally._analytics_reliability(r.range_start, r.range_end, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  )
  select x.kind, x.format, x.succeeded, x.failed, x.success_rate, x.timed_events, x.avg_duration_ms,
         x.p50_duration_ms, x.p95_duration_ms, x.p99_duration_ms, nullif(x.window_start, '-infinity'), x.window_end,
         x.refreshed_at
    from x
   -- Kinds and formats with fewer users than the minimum group size are left out.
   where (x.users >= min_users or min_users <= 1)
     and (only_kind is null or x.kind = only_kind)
   order by x.kind, x.format <> '*', x.format;
end
$$;

comment on function tally.admin_reliability(text, text, date, date, text) is
  'Per kind and format (attributes.format; ''*'' = all formats, first; '''' = none) in a timeframe: a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all; default 7d) as of refreshed_at, or the UTC days [from_day, to_day) at call time; window_start/window_end say which. Succeeded and failed attempts, success rate % (succeeded / (succeeded + failed)), average, p50, p95 and p99 duration of succeeded events (histogram estimates within 4.4%). With plan: only events recorded under that plan. Kinds and formats with fewer users (with an attempt) than the minimum group size are left out. Requires tally_analyst.';
