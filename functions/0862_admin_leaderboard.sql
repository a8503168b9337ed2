-- Top values of a declared dimension (voices, models, templates) in a timeframe (24h, 7d, 30d, all, or UTC days), ranked by a metric.
-- Called by dashboards, admin.leaderboard() and `pgtally admin`.
create or replace function tally.admin_leaderboard(dimension text, time_window text default null,
                                                   metric text default 'events', max_rows integer default 10,
                                                   from_day date default null, to_day date default null,
                                                   plan text default null)
returns table ("rank" bigint, value text, events bigint, quantity numeric, unit text, duration_ms numeric, cost numeric,
               users bigint,
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
  perform tally._dimension_keys(dimension);
  select * into r from tally._analytics_range(time_window, from_day, to_day, '7d');
  if metric is null or metric not in ('events', 'quantity', 'duration_ms', 'cost', 'users') then
    raise exception using errcode = 'PT011', column = 'metric',
      message = format('metric must be one of events, quantity, duration_ms, cost, users (got %L)', metric);
  elsif max_rows is null or max_rows not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'max_rows',
      message = format('max_rows must be between 1 and 1000 (got %s)', coalesce(max_rows::text, 'null'));
  end if;
  return query
  with l as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.value, m.events, m.quantity, m.unit, m.duration_ms, m.cost, m.users, m.window_start, m.window_end,
           tally._refreshed_at('admin_leaderboards_mv') as refreshed_at
      from tally.admin_leaderboards_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
       and m.dimension = admin_leaderboard.dimension
    union all
    select v.value, v.events, v.quantity, v.unit, v.duration_ms, v.cost, v.users, v.window_start, v.window_end,
           statement_timestamp()
      from tally._analytics_values(r.range_start, r.range_end, admin_leaderboard.dimension, p) v
     where r.window_name is null and v.plan = coalesce(p, '*')
  )
  select x.rnk, x.value, x.events, x.quantity, x.unit, x.duration_ms, x.cost, x.users, nullif(x.window_start, '-infinity'),
         x.window_end, x.refreshed_at
    from (select l.*, rank() over (order by s.score desc) as rnk
            from l
           cross join lateral (select case metric when 'events' then l.events::numeric
                                                  when 'quantity' then l.quantity::numeric
                                                  when 'duration_ms' then l.duration_ms::numeric
                                                  when 'cost' then l.cost
                                                  else l.users::numeric end as score) as s
           -- Values used by fewer users than the minimum group size are left out (before ranking).
           where (l.users >= min_users or min_users <= 1)
             and s.score > 0) as x
   order by x.rnk, x.value
   limit max_rows;
end
$$;

comment on function tally.admin_leaderboard(text, text, text, integer, date, date, text) is
  'Top max_rows values of a declared dimension in a timeframe ranked by metric (events, quantity, duration_ms, cost, users; ties share a rank): a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh, exact instants; all; default 7d) as of refreshed_at, or the UTC days [from_day, to_day) at call time; window_start/window_end say which. With plan: only events recorded under that plan. Values with nothing of the metric (by quantity: also those whose quantities count in different units, NULL), or with fewer users than the minimum group size, are left out. Requires tally_analyst.';
