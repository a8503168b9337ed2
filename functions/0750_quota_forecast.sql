-- Limits and forecast of one user for the current billing period, per kind: utilization, run rate, projection, date the limit is reached.
-- Called by usage pages and insights and the Python client's quota_forecast(); exact at commit (rollups + pending deltas).
create or replace function tally.quota_forecast(user_id text, lookback_days integer default 7, at timestamptz default now())
returns table (
  kind            text,
  plan            text,
  period_start    date,
  period_end      date,
  used            numeric,
  quota           bigint,
  remaining       numeric,
  utilization_pct numeric,
  run_rate        numeric,
  projected       numeric,
  reaches_limit_on date,
  status          text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  tz       text := tally._user_time_zone(user_id);
  today    date := (at at time zone tz)::date;
  plan_now text := tally.plan_at(user_id, at);
  anchor   integer := tally._period_anchor(user_id);
  p_start  date := tally._period_start(today, anchor);
  p_end    date := tally._period_end(p_start, anchor);
  -- The part of today still to come, in local days: the rest of today over its real length (23 or
  -- 25 hours on a daylight saving day), so that the last day of a period still projects its rest.
  today_left numeric := extract(epoch from ((today + 1)::timestamp at time zone tz) - at)
                        / extract(epoch from ((today + 1)::timestamp at time zone tz) - (today::timestamp at time zone tz));
  days_left  numeric := (p_end - today - 1) + today_left;
begin
  if lookback_days is null or lookback_days < 1 or lookback_days > 365 then
    raise exception using errcode = 'PT011', column = 'lookback_days',
      message = format('lookback_days must be between 1 and 365 (got %s)', coalesce(lookback_days::text, 'null'));
  end if;
  -- run_rate: quantity per day of the kind over the lookback_days local days ending
  -- today (today included). projected = used + run_rate * the time left in the
  -- period (the rest of today, then the full days after it; the end is exclusive).
  -- reaches_limit_on: today when the quota is used up, else the local day on which
  -- used + run_rate * elapsed time reaches it, when that is inside the period.
  return query
  with period as (
    select t.kind, t.quantity from tally.period_totals(quota_forecast.user_id, quota_forecast.at) t
  ), limits as (
    select l.kind, l.monthly_limit from tally.plan_limits l where l.plan = plan_now
  ), rates as (
    select d.value as kind, sum(d.quantity)::numeric / lookback_days as rate
      from tally.daily_totals(quota_forecast.user_id, 'kind', today - (lookback_days - 1), today) d
     group by d.value
  ), base as (
    select coalesce(p.kind, l.kind) as kind, coalesce(p.quantity, 0) as used, l.monthly_limit as quota,
           greatest(coalesce(r.rate, 0), 0) as rate
      from period p
      full join limits l on l.kind = p.kind
      left join rates r on r.kind = coalesce(p.kind, l.kind)
  ), projected as (
    select b.*, b.used + round(b.rate * days_left) as proj from base b
  )
  select x.kind, plan_now, p_start, p_end, x.used, x.quota, case when x.quota is not null then greatest(x.quota - x.used, 0) end,
         case when x.quota > 0 then round(100.0 * x.used / x.quota, 1) when x.quota = 0 then 100.0 end,
         round(x.rate, 2), x.proj,
         case when x.quota is null then null
              when x.used >= x.quota then today
              -- The day holding the moment (quota - used) / rate local days from at: today when that
              -- is before midnight, else one of the following days (a limit reached at the period's
              -- end counts on its last day).
              when x.proj >= x.quota then
                case when (x.quota - x.used) / x.rate < today_left then today
                     else least(today + 1 + floor((x.quota - x.used) / x.rate - today_left)::integer, p_end - 1) end
         end,
         case when x.quota is null then 'unlimited'
              when x.used >= x.quota then 'reached'
              when x.proj >= x.quota then 'will_reach'
              else 'ok' end
    from projected x
   order by x.kind;
end
$$;

comment on function tally.quota_forecast(text, integer, timestamptz) is
  'Current billing period of a user per kind (used this period or limited by the plan in force): used, quota, remaining, utilization %, run rate (quantity per day over the last lookback_days local days, today included), projected usage at period end (used + run rate * the time left: the rest of today, by its real length in the user''s time zone, and the full days after it), the local date the limit is reached (today when used up; NULL when unlimited or not reached this period) and status unlimited/reached/will_reach/ok. Exact at commit.';
