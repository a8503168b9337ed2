-- Compares every aggregate with a recomputation from the retained log and reports drift.
-- Called by DBAs, `pgtally verify` (exit code 1 on drift) and the tests after every lifecycle operation.
create or replace function tally.verify(sample_size integer default 5)
returns table (check_name text, checked bigint, drifted bigint, sample text[])
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  since timestamptz := tally._retained_since();
begin
  if sample_size is null or sample_size < 0 then
    raise exception using errcode = 'PT011', column = 'sample_size', message = 'sample_size must be 0 or more';
  end if;

  -- daily: merged rollups + pending deltas vs. the log, for the days the retained log covers wholly.
  return query
  with users as (
    select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
           case when since = '-infinity' then '-infinity'::date
                else (since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day
      from (select distinct k.user_id from tally.event_keys k
            union select distinct d.user_id from tally.user_daily d) as u
      left join tally.user_settings s on s.user_id = u.user_id
  ), expected as (
    select c.user_id, d.name as dimension, (c.occurred_at at time zone us.tz)::date as day,
           tally._dimension_value(d.keys, c.kind, c.attributes) as value,
           sum(c.events) as events, sum(c.failures) as failures, sum(c.quantity) as quantity,
           sum(c.duration_ms) as duration_ms, sum(c.timed_events) as timed_events, sum(c.cost) as cost
      from tally.event_contributions c
      join users us on us.user_id = c.user_id
     cross join tally.dimensions d
     where (c.occurred_at at time zone us.tz)::date >= us.cutoff_day
     group by 1, 2, 3, 4
  ), actual as (
    select x.user_id, x.dimension, x.day, x.value, sum(x.events) as events, sum(x.failures) as failures,
           sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms, sum(x.timed_events) as timed_events,
           sum(x.cost) as cost
      from (
        select t.user_id, t.dimension, t.day, t.value, t.events, t.failures, t.quantity, t.duration_ms,
               t.timed_events, t.cost
          from tally.user_daily t join users us on us.user_id = t.user_id
         where t.day >= us.cutoff_day
        union all
        select p.user_id, d.name, (p.occurred_at at time zone us.tz)::date,
               tally._dimension_value(d.keys, p.kind, p.attributes), p.events, p.failures, p.quantity,
               p.duration_ms, p.timed_events, p.cost
          from tally.pending_deltas p join users us on us.user_id = p.user_id
         cross join tally.dimensions d
         where (p.occurred_at at time zone us.tz)::date >= us.cutoff_day
      ) as x
     where x.value is not null
     group by 1, 2, 3, 4
  ), compared as (
    select coalesce(e.user_id, a.user_id) as user_id, coalesce(e.dimension, a.dimension) as dimension,
           coalesce(e.day, a.day) as day, coalesce(e.value, a.value) as value,
           (e.events, e.failures, e.quantity, e.duration_ms, e.timed_events, e.cost)
             is distinct from (a.events, a.failures, a.quantity, a.duration_ms, a.timed_events, a.cost) as drift
      from (select * from expected where value is not null) e
      full join actual a using (user_id, dimension, day, value)
  )
  select 'daily rollups vs log'::text, count(*), count(*) filter (where c.drift),
         (array_agg(format('%s/%s/%s/%s', c.user_id, c.dimension, c.day, c.value) order by c.user_id, c.dimension, c.day, c.value)
            filter (where c.drift))[1:sample_size]
    from compared c;

  -- lifetime: every lifetime total equals the sum of its daily rollups (this also covers
  -- history older than the retained log), and first/last use match the daily rows.
  return query
  with sums as (
    select d.user_id, d.dimension, d.value, sum(d.events) as events, sum(d.failures) as failures,
           sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms, sum(d.timed_events) as timed_events,
           sum(d.cost) as cost, min(d.first_at) as first_at, max(d.last_at) as last_at
      from tally.user_daily d
     group by 1, 2, 3
  ), compared as (
    select coalesce(t.user_id, s.user_id) as user_id, coalesce(t.dimension, s.dimension) as dimension,
           coalesce(t.value, s.value) as value,
           (t.events, t.failures, t.quantity, t.duration_ms, t.timed_events, t.cost, t.first_at, t.last_at)
             is distinct from (s.events, s.failures, s.quantity, s.duration_ms, s.timed_events, s.cost, s.first_at, s.last_at)
             as drift
      from tally.user_totals t
      full join sums s using (user_id, dimension, value)
  )
  select 'lifetime totals vs daily rollups'::text, count(*), count(*) filter (where c.drift),
         (array_agg(format('%s/%s/%s', c.user_id, c.dimension, c.value) order by c.user_id, c.dimension, c.value)
            filter (where c.drift))[1:sample_size]
    from compared c;

  -- billing periods: counters + pending vs. the log, for periods inside the retained log.
  return query
  with users as (
    select u.user_id, coalesce(s.time_zone, 'UTC') as tz, coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1) as anchor,
           case when since = '-infinity' then '-infinity'::date
                else (since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day
      from (select distinct k.user_id from tally.event_keys k
            union select distinct p.user_id from tally.user_periods p) as u
      left join tally.user_settings s on s.user_id = u.user_id
  ), expected as (
    select c.user_id, tally._period_start((c.occurred_at at time zone us.tz)::date, us.anchor) as period_start, c.kind,
           sum(c.events) as events, sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.cost) as cost
      from tally.event_contributions c join users us on us.user_id = c.user_id
     where c.billable
     group by 1, 2, 3
  ), actual as (
    select x.user_id, x.period_start, x.kind, sum(x.events) as events, sum(x.quantity) as quantity,
           sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from (
        select t.user_id, t.period_start, t.kind, t.events, t.quantity, t.duration_ms, t.cost from tally.user_periods t
        union all
        select p.user_id, tally._period_start((p.occurred_at at time zone us.tz)::date, us.anchor), p.kind,
               p.events, p.quantity, p.duration_ms, p.cost
          from tally.pending_deltas p join users us on us.user_id = p.user_id
         where p.billable
      ) as x
     group by 1, 2, 3
  ), compared as (
    select coalesce(e.user_id, a.user_id) as user_id, coalesce(e.period_start, a.period_start) as period_start,
           coalesce(e.kind, a.kind) as kind,
           (e.events, e.quantity, e.duration_ms, e.cost) is distinct from (a.events, a.quantity, a.duration_ms, a.cost) as drift
      from expected e full join actual a using (user_id, period_start, kind)
  )
  select 'billing periods vs log'::text, count(*), count(*) filter (where c.drift),
         (array_agg(format('%s/%s/%s', c.user_id, c.period_start, c.kind) order by c.user_id, c.period_start, c.kind)
            filter (where c.drift))[1:sample_size]
    from compared c
    join users us on us.user_id = c.user_id
   where c.period_start >= us.cutoff_day;

  -- exactly-once keys: every retained log row has its key, owned by the same user.
  return query
  select 'log rows vs exactly-once keys'::text, count(*),
         count(*) filter (where k.event_id is null or k.user_id <> e.user_id),
         (array_agg(e.event_id order by e.event_id) filter (where k.event_id is null or k.user_id <> e.user_id))[1:sample_size]
    from tally.usage_events e
    left join tally.event_keys k on k.event_id = e.event_id;
end
$$;

comment on function tally.verify(integer) is
  'Recomputes the aggregates from the retained log and reports, per check, how many keys were compared, how many drifted and a sample of drifted keys. All drifted = 0 means the aggregates are exact.';
