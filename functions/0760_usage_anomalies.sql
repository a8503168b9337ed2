-- Anomaly flags per local day: robust z-score of the day against the median and MAD of the 28 days before it.
-- Called by usage pages and insights and the Python client's usage_anomalies(); exact at commit.
create or replace function tally.usage_anomalies(user_id text, from_day date default null, to_day date default null,
                                                 metric text default 'quantity', kind text default null,
                                                 threshold numeric default 3.5, at timestamptz default now())
returns table (
  day             date,
  value           numeric,
  baseline_median numeric,
  baseline_mad    numeric,
  active_days     integer,
  robust_z        numeric,
  is_anomaly      boolean
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  m     text := tally._check_metric(metric);
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  f     date := coalesce(from_day, coalesce(to_day, today) - 29);
  t     date := coalesce(to_day, today);
begin
  if t < f or t - f > 3660 then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day within 3660 days (got %s .. %s)', f, t);
  elsif m = 'quantity' and kind is null and tally._mixed_units(user_id) then
    raise exception using errcode = 'PT011', column = 'kind',
      message = 'the quantity of all kinds adds different units: pass a kind, or use the metric events, duration_ms or cost';
  elsif threshold is null or threshold <= 0 then
    raise exception using errcode = 'PT011', column = 'threshold',
      message = format('threshold must be positive (got %s)', coalesce(threshold::text, 'null'));
  end if;
  -- Method (Iglewicz and Hoaglin's modified z-score): baseline = the 28 local days
  -- before the day, zero-filled; med = their median, MAD = median |x - med|;
  -- z = 0.6745 (x - med) / MAD, or (x - med) / (1.253314 * mean |x - med|) when
  -- MAD is 0; NULL when both are 0. A day is an anomaly when |z| >= threshold
  -- (default 3.5) and at least 7 of the 28 baseline days had usage.
  return query
  with series as (
    select g::date as day, coalesce(sum(case m when 'events' then d.events::numeric when 'quantity' then d.quantity::numeric
                                              when 'duration_ms' then d.duration_ms::numeric else d.cost end), 0) as v
      from generate_series((f - 28)::timestamp, t::timestamp, interval '1 day') g
      left join tally.daily_totals(usage_anomalies.user_id, 'kind', f - 28, t) d
        on d.day = g::date and (usage_anomalies.kind is null or d.value = usage_anomalies.kind)
     group by g
  ), med as (
    select s.day, s.v, w.med, w.active
      from series s
     cross join lateral (
       select percentile_cont(0.5) within group (order by b.v)::numeric as med,
              count(*) filter (where b.v <> 0)::integer as active
         from series b
        where b.day >= s.day - 28 and b.day < s.day) as w
     where s.day >= f
  ), dev as (
    select x.*, w.mad, w.meanad
      from med x
     cross join lateral (
       select percentile_cont(0.5) within group (order by abs(b.v - x.med))::numeric as mad,
              avg(abs(b.v - x.med)) as meanad
         from series b
        where b.day >= x.day - 28 and b.day < x.day) as w
  ), z as (
    select x.*, case when x.mad > 0 then 0.6745 * (x.v - x.med) / x.mad
                     when x.meanad > 0 then (x.v - x.med) / (1.253314 * x.meanad) end as z
      from dev x
  )
  select x.day, x.v, x.med, x.mad, x.active, round(x.z, 2),
         coalesce(abs(x.z) >= threshold and x.active >= 7, false)
    from z x
   order by x.day;
end
$$;

comment on function tally.usage_anomalies(text, date, date, text, text, numeric, timestamptz) is
  'Per local day of from_day..to_day (default: the last 30 days): the metric (events, quantity, duration_ms, cost; one kind or all), the median and MAD of the 28 days before it (zero-filled), the modified z-score 0.6745 (x - median) / MAD (mean absolute deviation * 1.253314 when MAD is 0) and is_anomaly = |z| >= threshold (3.5) with at least 7 active baseline days. Exact at commit.';
