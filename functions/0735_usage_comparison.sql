-- Week-over-week, month-over-month and year-over-year comparisons of one user's usage, with deltas and a trend flag.
-- Called by usage pages and insights and the Python client's compare_usage(); exact at commit (rollups + pending deltas).
create or replace function tally.usage_comparison(user_id text, period text default null, metric text default 'quantity',
                                                  kind text default null, complete boolean default false,
                                                  threshold numeric default 5, at timestamptz default now())
returns table (
  comparison     text,
  current_start  date,
  current_end    date,
  previous_start date,
  previous_end   date,
  current_value  numeric,
  previous_value numeric,
  delta          numeric,
  delta_pct      numeric,
  trend          text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  m     text := tally._check_metric(metric);
begin
  if period is not null and period not in ('week', 'month', 'year') then
    raise exception using errcode = 'PT011', column = 'period',
      message = format('period %L is not known: use week, month, year (or null for all three)', period);
  elsif threshold is null or threshold < 0 then
    raise exception using errcode = 'PT011', column = 'threshold',
      message = format('threshold must be a non-negative percentage (got %s)', coalesce(threshold::text, 'null'));
  elsif complete is null then
    raise exception using errcode = 'PT011', column = 'complete', message = 'complete must be true or false';
  end if;
  -- To date (complete = false): the current period up to today against the same
  -- dates one period earlier (Nov 1-21 against Oct 1-21). Complete: the last
  -- finished period against the one before it.
  return query
  with spans as (
    select p.name,
           case when complete then (date_trunc(p.name, today::timestamp) - p.step)::date
                else date_trunc(p.name, today::timestamp)::date end as c_start,
           case when complete then date_trunc(p.name, today::timestamp)::date else today + 1 end as c_end,
           p.step
      from (values ('week', interval '1 week', 1), ('month', interval '1 month', 2), ('year', interval '1 year', 3))
             as p(name, step, ord)
     where usage_comparison.period is null or p.name = usage_comparison.period
  ), bounds as (
    select s.name, s.c_start, s.c_end, (s.c_start - s.step)::date as p_start,
           case when complete then s.c_start
                else least(((s.c_end - 1) - s.step)::date + 1, s.c_start) end as p_end
      from spans s
  ), daily as (
    select d.day, case m when 'events' then d.events::numeric when 'quantity' then d.quantity::numeric
                         when 'duration_ms' then d.duration_ms::numeric else d.cost end as v
      from tally.daily_totals(usage_comparison.user_id, 'kind',
                              (select min(b.p_start) from bounds b), (select max(b.c_end) - 1 from bounds b)) d
     where usage_comparison.kind is null or d.value = usage_comparison.kind
  ), sums as (
    select b.*,
           coalesce((select sum(d.v) from daily d where d.day >= b.c_start and d.day < b.c_end), 0) as cur,
           coalesce((select sum(d.v) from daily d where d.day >= b.p_start and d.day < b.p_end), 0) as prev
      from bounds b
  )
  select s.name, s.c_start, s.c_end, s.p_start, s.p_end, s.cur, s.prev, s.cur - s.prev,
         case when s.prev <> 0 then round(100 * (s.cur - s.prev) / abs(s.prev), 1) end,
         case when s.prev = 0 then (case when s.cur > 0 then 'up' when s.cur < 0 then 'down' else 'stable' end)
              when abs(100 * (s.cur - s.prev) / abs(s.prev)) < threshold then 'stable'
              when s.cur > s.prev then 'up' else 'down' end
    from sums s
   order by case s.name when 'week' then 1 when 'month' then 2 else 3 end;
end
$$;

comment on function tally.usage_comparison(text, text, text, text, boolean, numeric, timestamptz) is
  'Week/month/year-over-year comparison of a metric (events, quantity, duration_ms, cost; one kind or all): period to date against the same dates one period earlier (or, complete = true, the last finished period against the one before); delta, delta % (NULL when previous is 0) and trend: stable when |delta %| < threshold (default 5), else up or down; with previous 0, up when current > 0. Ends are exclusive. Exact at commit.';
