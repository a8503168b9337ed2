-- The named timeframes of the admin analytics: the 24 hours, 7 days and 30 days ending at `at`, and all time before it.
-- Called by the admin materialized views at refresh time (at = the start of the refresh call).
create or replace function tally._analytics_windows(at timestamptz)
returns table (time_window text, from_at timestamptz, to_at timestamptz)
language sql
immutable
rows 4
set search_path = pg_catalog, pg_temp
as $$
  -- Rolling windows of exact instants [at - length, at): 24h is the last 24 hours,
  -- not "since yesterday midnight".
  select w.name, _analytics_windows.at - w.length, _analytics_windows.at
    from (values (1, '24h', interval '24 hours'), (2, '7d', interval '7 days'), (3, '30d', interval '30 days')) as w(n, name, length)
  union all
  select 'all', '-infinity'::timestamptz, _analytics_windows.at
$$;

comment on function tally._analytics_windows(timestamptz) is
  'The analytics timeframes ending at `at` (the views pass the start of the refresh): 24h = [at - 24 hours, at), 7d = [at - 7 days, at), 30d = [at - 30 days, at), all = everything before at (internal).';
