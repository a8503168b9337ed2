-- How an admin figure over [from_at, to_at) is read: whole UTC days from the per-user day tables (plus pending deltas),
-- partial days at either end from the raw log. Called by the admin analytics helpers (tally._analytics_*).
create or replace function tally._analytics_span(from_at timestamptz, to_at timestamptz)
returns table (window_start timestamptz, window_end timestamptz, first_day date, end_day date, head_end timestamptz,
               tail_start timestamptz)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- A window that starts or ends inside a UTC day takes that day's part from the
  -- raw log (exact instants). When retention has dropped that part of the log, the
  -- whole day is read from the day tables instead and the window is widened to
  -- the day's bounds: window_start / window_end say what was read.
  with b as (
    select x.d0, x.d1, x.d0::timestamp at time zone 'UTC' as m0, x.d1::timestamp at time zone 'UTC' as m1,
           coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r),
                    '-infinity'::timestamptz) as retained_since
      from (select (_analytics_span.from_at at time zone 'UTC')::date as d0,
                   (_analytics_span.to_at at time zone 'UTC')::date as d1) x
  ), s as (
    select case when _analytics_span.from_at = b.m0 or b.m0 >= b.retained_since then _analytics_span.from_at else b.m0 end
             as window_start,
           case when _analytics_span.from_at = b.m0 or b.m0 < b.retained_since then b.d0 else b.d0 + 1 end as first_day,
           case when _analytics_span.to_at = b.m1 or b.m1 >= b.retained_since then _analytics_span.to_at
                else (b.d1 + 1)::timestamp at time zone 'UTC' end as window_end,
           case when _analytics_span.to_at = b.m1 or b.m1 >= b.retained_since then b.d1 else b.d1 + 1 end as end_day
      from b
  )
  -- Head: [window_start, first whole day); tail: [end of the whole days, window_end).
  -- A window inside one day (first_day > end_day) is all head.
  select s.window_start, s.window_end, s.first_day, s.end_day,
         least(s.first_day::timestamp at time zone 'UTC', s.window_end),
         greatest(s.end_day::timestamp at time zone 'UTC', least(s.first_day::timestamp at time zone 'UTC', s.window_end))
    from s
$$;

comment on function tally._analytics_span(timestamptz, timestamptz) is
  'For an admin window [from_at, to_at): the window actually read (widened to whole UTC days where retention dropped the raw log of a partial day), the whole UTC days [first_day, end_day) read from the per-user day tables, and the partial days [window_start, head_end) and [tail_start, window_end) read from the raw log (internal).';
