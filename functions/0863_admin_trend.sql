-- Daily series (sparklines) per value of a dimension, zero-filled, in UTC days, optionally of one plan: events per day of chosen kinds, voices, models.
-- Called by dashboards, admin.trend() and `pgtally admin`.
create or replace function tally.admin_trend(dimension text default 'kind', only_values text[] default null,
                                             from_day date default null, to_day date default null,
                                             plan text default null)
returns table (day date, value text, events bigint, failures bigint, quantity numeric, unit text, duration_ms numeric,
               cost numeric, users bigint, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  last_day  date := coalesce(to_day, (now() at time zone 'UTC')::date);
  first_day date := coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29);
  p         text := coalesce(tally._analytics_plan(plan), '*');
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  if last_day < first_day or last_day - first_day > 3660 then
    raise exception using errcode = 'PT011', column = 'from_day',
      message = format('from_day %s to to_day %s is not a range of 1 to 3661 days', first_day, last_day);
  end if;
  -- A day on which fewer users than the minimum group size used a value counts
  -- as a day without use of it (0), so a small group's days are not revealed
  -- either; a value with no such day in the range is not listed.
  return query
  with vals as (
    select v.value from unnest(only_values) as v(value)
    union
    select distinct d.value from tally.admin_daily d
     where only_values is null and d.dimension = admin_trend.dimension and d.plan = p
       and d.day between first_day and last_day
       and (d.users >= min_users or min_users <= 1)
  )
  select g.day::date, vals.value, coalesce(d.events, 0), coalesce(d.failures, 0),
         -- NULL when the value's quantities that day count in different units (never added).
         case when d.value is null then 0 else d.quantity end, d.unit,
         coalesce(d.duration_ms, 0), coalesce(d.cost, 0), coalesce(d.users, 0),
         tally._refreshed_at('admin_daily')
    from generate_series(first_day, last_day, interval '1 day') as g(day)
   cross join vals
    left join tally.admin_daily d
           on d.dimension = admin_trend.dimension and d.plan = p and d.day = g.day::date and d.value = vals.value
          and (d.users >= min_users or min_users <= 1)
          -- The range again, for the planner: it cannot derive it from g.day, and would read every day.
          and d.day between first_day and last_day
   order by vals.value, g.day;
end
$$;

comment on function tally.admin_trend(text, text[], date, date, text) is
  'Platform series per UTC day (from_day through to_day, both included; default the 30 days ending today) and value of a declared dimension, zero-filled: events, failures, quantity and its unit (NULL both when the day''s quantities of the value count in different units), duration, cost, active users. With plan: only events recorded under that plan. A day with fewer users of a value than the minimum group size shows 0, as a day without use. only_values picks values (default: all with a day shown in the range). As of refreshed_at (today''s row: the day up to the refresh). Requires tally_analyst.';
