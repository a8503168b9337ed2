-- Weekday distribution of one user's usage over local days (Monday first), every weekday present.
-- Called by usage pages (patterns) and the Python client's weekday_distribution(); exact at commit.
create or replace function tally.weekday_distribution(user_id text, from_day date default null, to_day date default null,
                                                      at timestamptz default now())
returns table (
  weekday     smallint,
  day_name    text,
  active_days bigint,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  share_pct   numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  last_day date := coalesce(to_day, (at at time zone tally._user_time_zone(user_id))::date);
  mixed    boolean := tally._mixed_units(user_id);  -- quantities of several units do not add: NULL
begin
  if from_day is not null and from_day > last_day then
    raise exception using errcode = 'PT011', column = 'from_day',
      message = format('need from_day <= to_day (got %s .. %s)', from_day, last_day);
  end if;
  -- Default range: all history up to today. share_pct is the weekday's share of events.
  return query
  with days as (
    select d.day, sum(d.events) as events, sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms,
           sum(d.cost) as cost
      from tally.daily_totals(weekday_distribution.user_id, 'kind', coalesce(from_day, '2000-01-01'), last_day) d
     group by d.day
  ), by_weekday as (
    select extract(isodow from x.day)::smallint as wd, count(*) filter (where x.events > 0) as active,
           sum(x.events) as events, sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from days x
     group by 1
  )
  select w.wd::smallint, (array['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[w.wd],
         coalesce(b.active, 0)::bigint, coalesce(b.events, 0)::bigint, case when not mixed then coalesce(b.quantity, 0) end,
         coalesce(b.duration_ms, 0), coalesce(b.cost, 0),
         case when sum(b.events) over () > 0 then round(100.0 * coalesce(b.events, 0) / sum(b.events) over (), 1) else 0 end
    from generate_series(1, 7) as w(wd)
    left join by_weekday b on b.wd = w.wd
   order by w.wd;
end
$$;

comment on function tally.weekday_distribution(text, date, date, timestamptz) is
  'Usage of a user per local weekday (1 = Monday .. 7 = Sunday, all seven present) over from_day..to_day (default: all history to today): active days, events, quantity, duration, cost and share of events in %. Exact at commit.';
