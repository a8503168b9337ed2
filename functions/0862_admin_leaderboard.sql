-- Top values of a declared dimension (voices, models, templates) in a timeframe (24h, 7d, 30d, all), ranked by a metric.
-- Called by dashboards, admin.leaderboard() and `pgtally admin`.
create or replace function tally.admin_leaderboard(dimension text, time_window text default '7d',
                                                   metric text default 'events', max_rows integer default 10)
returns table ("rank" bigint, value text, events bigint, quantity numeric, duration_ms numeric, cost numeric, users bigint,
               window_start date, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  perform tally._check_window(time_window);
  if metric is null or metric not in ('events', 'quantity', 'duration_ms', 'cost', 'users') then
    raise exception using errcode = 'PT011', column = 'metric',
      message = format('metric must be one of events, quantity, duration_ms, cost, users (got %L)', metric);
  elsif max_rows is null or max_rows not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'max_rows',
      message = format('max_rows must be between 1 and 1000 (got %s)', coalesce(max_rows::text, 'null'));
  end if;
  return query
  select r.rnk, r.value, r.events, r.quantity, r.duration_ms, r.cost, r.users, r.window_start,
         tally._refreshed_at('admin_leaderboards_mv')
    from (select l.*, rank() over (order by s.score desc) as rnk
            from tally.admin_leaderboards_mv l
           cross join lateral (select case metric when 'events' then l.events::numeric
                                                  when 'quantity' then l.quantity::numeric
                                                  when 'duration_ms' then l.duration_ms::numeric
                                                  when 'cost' then l.cost
                                                  else l.users::numeric end as score) as s
           where l.dimension = admin_leaderboard.dimension and l.time_window = admin_leaderboard.time_window
             -- Values used by fewer users than the minimum group size are left out (before ranking).
             and (l.users >= min_users or min_users <= 1)
             and s.score > 0) as r
   order by r.rnk, r.value
   limit max_rows;
end
$$;

comment on function tally.admin_leaderboard(text, text, text, integer) is
  'Top max_rows values of a declared dimension in a timeframe (24h, 7d, 30d: the days overlapping it, in UTC; all: lifetime) ranked by metric (events, quantity, duration_ms, cost, users; ties share a rank); values with nothing of the metric, or with fewer users than the minimum group size, are left out. As of refreshed_at. Requires tally_analyst.';
