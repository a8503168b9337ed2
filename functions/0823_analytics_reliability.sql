-- Reliability per plan, kind and format over a window [from_at, to_at): attempts, success rate inputs, durations and percentile buckets.
-- Called by tally.admin_reliability_mv (the named windows, at refresh) and by tally.admin_reliability (a range of days).
create or replace function tally._analytics_reliability(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns table (plan text, kind text, format text, succeeded bigint, failed bigint, timed_events bigint,
               duration_ms numeric, p50_bucket smallint, p95_bucket smallint, p99_bucket smallint, users bigint,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  return query
  with ops as (
    select o.user_id, o.plan, o.kind, o.format, o.succeeded, o.failed, o.timed_events, o.duration_ms
      from tally.user_daily_ops o
     where o.day >= s.first_day and o.day < s.end_day and (only_plan is null or o.plan = only_plan)
    union all
    select d.user_id, d.plan, d.kind, d.format, d.succeeded, d.failed, d.timed_events, d.duration_ms
      from tally._analytics_delta_ops(from_at, to_at) d
     where only_plan is null or d.plan = only_plan
  ), per_user as (
    -- Groups: plan (or '*' = every plan) by kind and format (or '*' = every format).
    select case when grouping(o.plan) = 1 then '*' else o.plan end as plan, o.kind,
           case when grouping(o.format) = 1 then '*' else o.format end as format,
           sum(o.succeeded) as succeeded, sum(o.failed) as failed, sum(o.timed_events) as timed_events,
           sum(o.duration_ms) as duration_ms, sum(o.succeeded) > 0 or sum(o.failed) > 0 as active
      from ops o
     group by grouping sets ((o.plan, o.kind, o.format, o.user_id), (o.plan, o.kind, o.user_id),
                             (o.kind, o.format, o.user_id), (o.kind, o.user_id))
  ), attempts as (
    select u.plan, u.kind, u.format, sum(u.succeeded)::bigint as succeeded, sum(u.failed)::bigint as failed,
           sum(u.timed_events)::bigint as timed_events, sum(u.duration_ms) as duration_ms,
           -- Distinct users with an attempt: the admin function hides smaller groups than the minimum.
           count(*) filter (where u.active) as users
      from per_user u
     group by u.plan, u.kind, u.format
  ), buckets as (
    select h.plan, h.kind, h.format, h.bucket, h.events
      from tally.user_daily_durations h
     where h.day >= s.first_day and h.day < s.end_day and (only_plan is null or h.plan = only_plan)
    union all
    select m.plan, m.kind, coalesce(left(m.attributes ->> 'format', 64), ''), tally._duration_bucket(m.duration_ms), 1
      from tally._analytics_deltas(from_at, to_at) m
     where m.is_use and m.timed_events = 1 and (only_plan is null or m.plan = only_plan)
  ), histogram as (
    select case when grouping(b.plan) = 1 then '*' else b.plan end as plan, b.kind,
           case when grouping(b.format) = 1 then '*' else b.format end as format, b.bucket, sum(b.events) as n
      from buckets b
     group by grouping sets ((b.plan, b.kind, b.format, b.bucket), (b.plan, b.kind, b.bucket),
                             (b.kind, b.format, b.bucket), (b.kind, b.bucket))
  ), cumulative as (
    select h.*, sum(h.n) over (partition by h.plan, h.kind, h.format order by h.bucket) as below,
           sum(h.n) over (partition by h.plan, h.kind, h.format) as total
      from histogram h
  ), percentiles as (
    -- Nearest rank: the first bucket whose cumulative count reaches q * total.
    select c.plan, c.kind, c.format,
           min(c.bucket) filter (where c.below >= 0.50 * c.total) as p50,
           min(c.bucket) filter (where c.below >= 0.95 * c.total) as p95,
           min(c.bucket) filter (where c.below >= 0.99 * c.total) as p99
      from cumulative c
     group by c.plan, c.kind, c.format
  )
  select a.plan, a.kind, a.format, a.succeeded, a.failed, a.timed_events, a.duration_ms, p.p50, p.p95, p.p99, a.users,
         s.window_start, s.window_end
    from attempts a
    left join percentiles p on p.plan = a.plan and p.kind = a.kind and p.format = a.format;
end
$$;

comment on function tally._analytics_reliability(timestamptz, timestamptz, text) is
  'Reliability over [from_at, to_at) per plan in force (''*'' = all plans, '''' = none), kind and format (''*'' = all formats): succeeded and failed attempts, timed events and their total duration, the histogram buckets of the p50/p95/p99 durations, users with an attempt; window_start/window_end = the window read (see tally._analytics_span). Internal: no minimum group size applied.';
