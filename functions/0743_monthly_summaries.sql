-- Monthly summaries of one user: the last N local calendar months (current included), every month present.
-- Called by usage pages (patterns) and the Python client's monthly_summaries(); exact at commit.
create or replace function tally.monthly_summaries(user_id text, months integer default 12, at timestamptz default now())
returns table (
  month_start     date,
  month_end       date,
  events          bigint,
  quantity        numeric,
  duration_ms     numeric,
  cost            numeric,
  failures        bigint,
  active_days     bigint,
  top_kind        text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  first_month date;
  mixed boolean := tally._mixed_units(user_id);  -- quantities of several units do not add: NULL
begin
  if months is null or months < 1 or months > 120 then
    raise exception using errcode = 'PT011', column = 'months',
      message = format('months must be between 1 and 120 (got %s)', coalesce(months::text, 'null'));
  end if;
  first_month := (date_trunc('month', today::timestamp) - make_interval(months => months - 1))::date;
  -- top_kind: the kind with the most events in the month (then quantity, then name).
  return query
  with d as (
    select date_trunc('month', x.day::timestamp)::date as m, x.day, x.value, x.events, x.quantity, x.duration_ms,
           x.cost, x.failures
      from tally.daily_totals(monthly_summaries.user_id, 'kind', first_month,
                              (date_trunc('month', today::timestamp) + interval '1 month')::date - 1) x
  ), per_kind as (
    select d.m, d.value, sum(d.events) as events, sum(d.quantity) as quantity from d group by d.m, d.value
  ), per_day as (
    select d.m, d.day from d group by d.m, d.day having sum(d.events) > 0
  )
  select g::date, (g + interval '1 month')::date,
         coalesce(sum(d.events), 0)::bigint, case when not mixed then coalesce(sum(d.quantity), 0) end,
         coalesce(sum(d.duration_ms), 0),
         coalesce(sum(d.cost), 0), coalesce(sum(d.failures), 0)::bigint,
         (select count(*) from per_day p where p.m = g::date),
         (select k.value from per_kind k where k.m = g::date and k.events > 0
           order by k.events desc, k.quantity desc, k.value limit 1)
    from generate_series(first_month::timestamp, today::timestamp, interval '1 month') g
    left join d on d.m = g::date
   group by g
   order by g;
end
$$;

comment on function tally.monthly_summaries(text, integer, timestamptz) is
  'The last months local calendar months of a user (current one included, oldest first, all present): events, quantity, duration, cost, failures, active days and the top kind by events. month_end is exclusive. Exact at commit.';
