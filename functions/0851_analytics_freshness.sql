-- How fresh each admin materialized view is: when its data were taken, how long the refresh took, its age now.
-- Called by dashboards, `pgtally admin` and monitoring (alert when age exceeds the schedule).
create or replace function tally.analytics_freshness()
returns table (view_name text, refreshed_at timestamptz, finished_at timestamptz, duration_ms numeric, row_count bigint,
               age interval)
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  select v.name, l.started_at, l.finished_at, l.duration_ms, l.row_count, clock_timestamp() - l.started_at
    from unnest(tally._analytics_views()) with ordinality as v(name, n)
    left join lateral (
      select r.started_at, r.finished_at, r.duration_ms, r.row_count
        from tally.refresh_log r
       where r.view_name = v.name
       order by r.started_at desc
       limit 1) as l on true
   order by v.n
$$;

comment on function tally.analytics_freshness() is
  'Per admin materialized view: refreshed_at (when its data were taken; NULL = never refreshed), finished_at, duration_ms and row_count of its last refresh, and its age now.';
