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
  tz       text := tally._user_time_zone(user_id);
  local_at timestamp := at at time zone tz;
  today    date := (at at time zone tz)::date;
  m        text := tally._check_metric(metric);
begin
  if period is not null and period not in ('week', 'month', 'year') then
    raise exception using errcode = 'PT011', column = 'period',
      message = format('period %L is not known: use week, month, year (or null for all three)', period);
  elsif threshold is null or threshold < 0 then
    raise exception using errcode = 'PT011', column = 'threshold',
      message = format('threshold must be a non-negative percentage (got %s)', coalesce(threshold::text, 'null'));
  elsif complete is null then
    raise exception using errcode = 'PT011', column = 'complete', message = 'complete must be true or false';
  elsif m = 'quantity' and kind is null and tally._mixed_units(user_id) then
    raise exception using errcode = 'PT011', column = 'kind',
      message = 'the quantity of all kinds adds different units: pass a kind, or use the metric events, duration_ms or cost';
  end if;
  -- To date (complete = false), like with like: this period from its start up to the moment at
  -- (today counted up to at) against the previous period up to the same local time one period
  -- earlier (Monday 08:00 against last Monday 08:00, Nov 1-21 10:00 against Oct 1-21 10:00). When
  -- the earlier period has no such day (Mar 31 against February, Feb 29 against the year before),
  -- it counts up to the end of its last day. Whole days come from the rollups; the two cut days
  -- from the retained raw log, by the rules of tally.event_contributions. A cut day whose raw log
  -- no longer matches its rollup (dropped by retention) cannot be cut: then both sides stop at
  -- the start of their last day. Complete: the last finished period against the one before it.
  return query
  with spans as (
    select p.name, p.step, p.ord,
           case when complete then (date_trunc(p.name, today::timestamp) - p.step)::date
                else date_trunc(p.name, today::timestamp)::date end as c_start,
           local_at - p.step as p_local
      from (values ('week', interval '1 week', 1), ('month', interval '1 month', 2), ('year', interval '1 year', 3))
             as p(name, step, ord)
     where usage_comparison.period is null or p.name = usage_comparison.period
  ), bounds as (
    select s.name, s.ord, s.c_start, (s.c_start - s.step)::date as p_start,
           case when complete then date_trunc(s.name, today::timestamp)::date else today end as c_day,
           case when complete then s.c_start else s.p_local::date end as p_day,
           -- The moment the previous side's last day is cut at; NULL: counted whole.
           -- (one period later it is today again: the earlier period has the day).
           case when not complete and (s.p_local + s.step)::date = today
                then s.p_local at time zone tz end as p_cut
      from spans s
  ), daily as (
    select d.day, d.value, d.events, d.quantity, d.duration_ms, d.cost, d.failures,
           case m when 'events' then d.events::numeric when 'quantity' then d.quantity::numeric
                  when 'duration_ms' then d.duration_ms::numeric else d.cost end as v
      from tally.daily_totals(usage_comparison.user_id, 'kind',
                              (select min(b.p_start) from bounds b), today) d
  ), cut_days as (
    -- The days counted up to a moment: today up to at, and each previous side's last day up to its cut.
    select today as day, usage_comparison.at as cut where not complete
    union
    select b.p_day, b.p_cut from bounds b where b.p_cut is not null
  ), raw as (
    select c.day, c.cut,
           coalesce(sum(case m when 'events' then r.events when 'quantity' then r.quantity
                               when 'duration_ms' then r.duration_ms else r.cost end)
                      filter (where r.occurred_at <= c.cut
                                and (usage_comparison.kind is null or r.kind = usage_comparison.kind)), 0) as v,
           -- The raw log covers the day when its totals equal the rollups' (retention drops whole months).
           (coalesce(sum(r.events), 0), coalesce(sum(r.failures), 0), coalesce(sum(r.quantity), 0),
            coalesce(sum(r.duration_ms), 0), coalesce(sum(r.cost), 0))
           = (select coalesce(sum(d.events), 0), coalesce(sum(d.failures), 0), coalesce(sum(d.quantity), 0),
                     coalesce(sum(d.duration_ms), 0), coalesce(sum(d.cost), 0)
                from daily d where d.day = c.day) as covered
      from cut_days c
      left join lateral (
        select e.kind, e.occurred_at,
               case when e.status = 'reversed' then -1
                    when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end::numeric as events,
               case when e.status = 'failed' then 1 else 0 end::numeric as failures,
               case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end::numeric as quantity,
               case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end::numeric
                 as duration_ms,
               case when e.status in ('succeeded', 'reversed') then e.cost else 0 end as cost
          from tally.export_events(usage_comparison.user_id, c.day::timestamp at time zone tz,
                                   (c.day + 1)::timestamp at time zone tz) e
      ) r on true
     group by c.day, c.cut
  ), cuts as (
    select b.*, t.v as c_cut_v, coalesce(t.covered, true) and coalesce(p.covered, true) as cut_ok, p.v as p_cut_v
      from bounds b
      left join raw t on not complete and t.day = today
      left join raw p on b.p_cut is not null and p.day = b.p_day
  ), sums as (
    select x.name, x.ord, x.c_start, x.p_start,
           -- Exclusive ends: the day after the last day counted, wholly or up to its cut.
           case when not complete and x.cut_ok then today + 1 else x.c_day end as c_end,
           case when not complete and x.cut_ok then x.p_day + 1 else x.p_day end as p_end,
           coalesce((select sum(d.v) from daily d
                      where d.day >= x.c_start and d.day < x.c_day
                        and (usage_comparison.kind is null or d.value = usage_comparison.kind)), 0)
           + case when not complete and x.cut_ok then coalesce(x.c_cut_v, 0) else 0 end as cur,
           coalesce((select sum(d.v) from daily d
                      where d.day >= x.p_start
                        and d.day < case when not complete and x.cut_ok and x.p_cut is null then x.p_day + 1
                                         else x.p_day end
                        and (usage_comparison.kind is null or d.value = usage_comparison.kind)), 0)
           + case when x.cut_ok and x.p_cut is not null then coalesce(x.p_cut_v, 0) else 0 end as prev
      from cuts x
  )
  select s.name, s.c_start, s.c_end, s.p_start, s.p_end, s.cur, s.prev, s.cur - s.prev,
         case when s.prev <> 0 then round(100 * (s.cur - s.prev) / abs(s.prev), 1) end,
         case when s.prev = 0 then (case when s.cur > 0 then 'up' when s.cur < 0 then 'down' else 'stable' end)
              when abs(100 * (s.cur - s.prev) / abs(s.prev)) < threshold then 'stable'
              when s.cur > s.prev then 'up' else 'down' end
    from sums s
   order by s.ord;
end
$$;

comment on function tally.usage_comparison(text, text, text, text, boolean, numeric, timestamptz) is
  'Week/month/year-over-year comparison of a metric (events, quantity, duration_ms, cost; one kind or all): to date, this period up to the moment at against the previous period up to the same local time one period earlier (Monday 08:00 against last Monday 08:00; when the earlier period lacks the day, up to its end), or (complete = true) the last finished period against the one before; delta, delta % (NULL when previous is 0) and trend: stable when |delta %| < threshold (default 5), else up or down; with previous 0, up when current > 0. Ends are exclusive dates; the last day of each side is counted up to the time of at. Exact at commit.';
