-- Calendar heatmap of one user for a year: every local day of the year with its usage and a level 0-4.
-- Called by usage pages (patterns) and the Python client's calendar_heatmap(); exact at commit.
create or replace function tally.calendar_heatmap(user_id text, year integer default null, at timestamptz default now())
returns table (
  day         date,
  weekday     smallint,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  level       smallint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  y     integer := coalesce(year, extract(year from (at at time zone tally._user_time_zone(user_id)))::integer);
  jan1 date;
  mixed boolean := tally._mixed_units(user_id);  -- quantities of several units do not add: NULL, levels by events
begin
  if y < 2000 or y > 2200 then
    raise exception using errcode = 'PT011', column = 'year', message = format('year must be between 2000 and 2200 (got %s)', y);
  end if;
  jan1 := make_date(y, 1, 1);
  -- level 0: no succeeded event; 1-4: quartile of the day's quantity among the
  -- year's active days (ceil(4 * cume_dist)), so equal days share a level.
  return query
  with days as (
    select d.day, sum(d.events) as events, sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms,
           sum(d.cost) as cost
      from tally.daily_totals(calendar_heatmap.user_id, 'kind', jan1, (jan1 + interval '1 year')::date - 1) d
     group by d.day
  ), levels as (
    select x.day, ceil(4 * cume_dist() over (order by case when mixed then x.events else x.quantity end))::smallint as lvl
      from days x
     where x.events > 0
  )
  select g::date, extract(isodow from g)::smallint, coalesce(x.events, 0)::bigint, case when not mixed then coalesce(x.quantity, 0) end,
         coalesce(x.duration_ms, 0), coalesce(x.cost, 0), coalesce(l.lvl, 0)::smallint
    from generate_series(jan1::timestamp, (jan1 + interval '1 year')::date - 1, interval '1 day') g
    left join days x on x.day = g::date
    left join levels l on l.day = g::date
   order by 1;
end
$$;

comment on function tally.calendar_heatmap(text, integer, timestamptz) is
  'Every local day of a year (default: the current one) with a user''s events, quantity, duration, cost and a level: 0 without succeeded events, else 1-4 by quartile of quantity among the year''s active days. Exact at commit.';
