-- The timeframes of the admin analytics: 24h, 7d, 30d and all, as a start day (rollups) and a start time (raw log).
-- Called by the admin materialized views at refresh time and by tally.admin_leaderboard to validate a window.
create or replace function tally._analytics_windows()
returns table (time_window text, since date, since_at timestamptz)
language sql
stable
rows 4
set search_path = pg_catalog, pg_temp
as $$
  -- Rollups are day-grained: a window covers every (local) day overlapping
  -- [now() - length, now()], the day taken in UTC. The raw log is exact.
  select w.name, ((now() - w.length) at time zone 'UTC')::date, now() - w.length
    from (values (1, '24h', interval '24 hours'), (2, '7d', interval '7 days'), (3, '30d', interval '30 days')) as w(n, name, length)
  union all
  select 'all', null::date, null::timestamptz
$$;

comment on function tally._analytics_windows() is
  'The analytics timeframes (24h, 7d, 30d, all) with their first day (for day-grained rollups: days overlapping the window, in UTC) and start time (for the raw log); all has neither.';
