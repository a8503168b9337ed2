-- Usage history of one user: every day, week (Monday first) or month bucket of a range in local time, zero-filled, optionally stacked by a dimension.
-- Called by usage pages (charts) and the Python client's usage_history(); exact at commit (rollups + pending deltas).
create or replace function tally.usage_history(user_id text, range text default '30d', bucket text default 'day',
                                               dimension text default null, from_day date default null,
                                               to_day date default null, at timestamptz default now())
returns table (
  bucket_start date,
  bucket_end   date,
  value        text,
  events       bigint,
  quantity     numeric,
  duration_ms  numeric,
  cost         numeric,
  failures     bigint,
  unit         text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  r     record;
  step  interval;
begin
  if bucket is null or bucket not in ('day', 'week', 'month') then
    raise exception using errcode = 'PT011', column = 'bucket',
      message = format('bucket %L is not known: use day, week or month', bucket);
  end if;
  if dimension is not null then
    perform tally._dimension_keys(dimension);
  end if;
  r := tally._range_days(range, from_day, to_day, today);
  step := ('1 ' || bucket)::interval;
  -- Days outside the range are not counted, also in a first or last bucket that
  -- the range cuts; every bucket appears, and with a dimension every value that
  -- occurs in the range appears in every bucket.
  return query
  with days as (
    select date_trunc(bucket, d.day::timestamp)::date as b, d.value, d.events, d.quantity, d.duration_ms, d.cost, d.failures,
           case when dimension is null or dimension = 'kind' then coalesce(k.unit, d.value) end as unit
      from tally.daily_totals(usage_history.user_id, coalesce(dimension, 'kind'), r.first_day, r.last_day) d
      -- The unit of a kind as tally._kind_unit gives it, joined once: a call per day of that
      -- (pinned, so never inlined) function cost more than the rest of a 12-month history.
      left join tally.kinds k on k.kind = d.value
  ), units as (
    -- Quantities add within one unit only: summed over kinds of several units, the
    -- range shows no quantity at all (NULL) rather than a number in no unit.
    -- (Units grouped first: a hash over a few units instead of sorting every day for the distinct count.)
    select count(*) filter (where x.used) as n, min(x.unit) filter (where x.used) as unit
      from (select d.unit, bool_or(d.quantity <> 0) as used from days d where d.unit is not null group by d.unit) x
  ), per_bucket as (
    -- One row per bucket (and value, when stacked) before the zero-filling join.
    select d.b, case when dimension is not null then d.value end as value, sum(d.events) as events,
           sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms, sum(d.cost) as cost,
           sum(d.failures) as failures
      from days d
     group by 1, 2
  ), buckets as (
    select g::date as b
      from generate_series(date_trunc(bucket, r.first_day::timestamp), r.last_day::timestamp, step) g
  ), vals as (
    select distinct d.value from days d where dimension is not null
    union all
    select null::text where dimension is null or not exists (select from days)
  )
  select k.b, (k.b + step)::date, v.value, coalesce(d.events, 0)::bigint,
         case when dimension is not null or u.n <= 1 then coalesce(d.quantity, 0) end,
         coalesce(d.duration_ms, 0), coalesce(d.cost, 0), coalesce(d.failures, 0)::bigint,
         case when dimension = 'kind' then coalesce((select k.unit from tally.kinds k where k.kind = v.value), v.value)
              when dimension is null and u.n = 1 then u.unit end
    from buckets k
   cross join vals v
   cross join units u
    left join per_bucket d on d.b = k.b and d.value is not distinct from v.value
   order by k.b, v.value;
end
$$;

comment on function tally.usage_history(text, text, text, text, date, date, timestamptz) is
  'Usage of a user per bucket (day, week starting Monday, or month of local days) over a range (7d, 30d, 3m, 12m, any N[dwmy] ending today, or custom from_day..to_day), every bucket present with zeros; bucket_end is exclusive; stacked by a declared dimension when given (value NULL otherwise). Quantities add within one unit only: unstacked over kinds of several units the quantity is NULL; unit names the quantity''s unit (NULL when mixed, or stacked by a dimension other than kind). Exact at commit.';
