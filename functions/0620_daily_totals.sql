-- Daily totals of one user per local day and dimension value in a range of local days.
-- Called by application backends (trend charts) and the Python client's daily_totals().
create or replace function tally.daily_totals(user_id text, dimension text, from_day date, to_day date)
returns table (
  day         date,
  value       text,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  failures    bigint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  if from_day is null or to_day is null or to_day < from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day (got %s .. %s)', coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  end if;
  if not exists (select from tally.pending_deltas q where q.user_id = daily_totals.user_id) then
    -- Nothing pending for the user (the usual case between merges): the merged rows are
    -- already one per day and value, in key order; no sort, no aggregation.
    return query
    select t.day, t.value, t.events, t.quantity, t.duration_ms, t.cost, t.failures
      from tally.user_daily t
     where t.user_id = daily_totals.user_id and t.dimension = daily_totals.dimension
       and t.day between from_day and to_day
     order by t.day, t.value;
    return;
  end if;
  return query
  select x.day, x.value, sum(x.events)::bigint, sum(x.quantity), sum(x.duration_ms), sum(x.cost),
         sum(x.failures)::bigint
    from (
      select t.day, t.value, t.events, t.quantity, t.duration_ms, t.cost, t.failures
        from tally.user_daily t
       where t.user_id = daily_totals.user_id and t.dimension = daily_totals.dimension
         and t.day between from_day and to_day
      union all
      select p.day, p.value, p.events, p.quantity, p.duration_ms, p.cost, p.failures
        from (
          select (q.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date as day,
                 tally._dimension_value(keys, q.kind, q.attributes, q.plan) as value,
                 q.events, q.quantity, q.duration_ms, q.cost, q.failures
            from tally.pending_deltas q
            left join tally.user_settings s on s.user_id = q.user_id
           where q.user_id = daily_totals.user_id
        ) as p
       where p.day between from_day and to_day
    ) as x
   where x.value is not null
   group by x.day, x.value
   order by x.day, x.value;
end
$$;

comment on function tally.daily_totals(text, text, date, date) is
  'Totals of a user per local day (user''s time zone) and value of a declared dimension, for days from_day..to_day with activity; exact at commit.';
