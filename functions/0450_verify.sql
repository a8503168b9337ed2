-- Compares every table derived from the log with a recomputation from the retained log, and the log with its keys; reports drift.
-- Called by DBAs, `pgtally verify` (exit code 1 on drift, with the command that repairs it) and the tests after every lifecycle operation.
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

  -- ==========================================================================
  -- Every table derived from the log vs. the counted log rows, in one statement (one
  -- read of the log). Each expectation is plain SQL over tally._counted_events, written
  -- from the rules the merge appliers follow but sharing no code with them or with
  -- tally.rebuild; the actual side is the table plus the pending deltas (the merge adds
  -- them later). Only the part tally._rebuild_scope says the retained log wholly covers
  -- is compared: days from cutoff_day (local) or utc_cutoff_day (UTC) on, and lifetime
  -- tables for users whose whole history is retained. A missing row and a row of zeros
  -- differ: both sides hold a row exactly when some event contributes to it.
  -- ==========================================================================
  return query
  with scope as materialized (
    select * from tally._rebuild_scope(null)
  ), counted as materialized (
    select c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity, c.duration_ms,
           c.timed_events, c.cost, c.billable, c.is_use, c.plan, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day,
           sc.whole, c.occurred_at at time zone sc.tz as local_at, (c.occurred_at at time zone sc.tz)::date as day,
           (c.occurred_at at time zone 'UTC')::date as utc_day
      from tally._counted_events(null) c
      join scope sc on sc.user_id = c.user_id
  ), pending as materialized (
    select p.user_id, p.kind, p.occurred_at, p.attributes, p.events, p.failures, p.quantity, p.duration_ms,
           p.timed_events, p.cost, p.billable, p.is_use, p.plan, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day,
           sc.whole, p.occurred_at at time zone sc.tz as local_at, (p.occurred_at at time zone sc.tz)::date as day,
           (p.occurred_at at time zone 'UTC')::date as utc_day
      from tally.pending_deltas p
      join scope sc on sc.user_id = p.user_id
  ),

  -- -------------------------------------------------------------- daily rollups (local days)
  daily_expected as (
    select c.user_id, d.name as dimension, c.day, v.value, sum(c.events) as events, sum(c.failures) as failures,
           sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.timed_events) as timed_events,
           sum(c.cost) as cost, min(c.occurred_at) filter (where c.is_use) as first_at,
           max(c.occurred_at) filter (where c.is_use) as last_at
      from counted c
     cross join tally.dimensions d
     cross join lateral (select tally._dimension_value(d.keys, c.kind, c.attributes, c.plan) as value) v
     where c.day >= c.cutoff_day and v.value is not null
     group by 1, 2, 3, 4
  ), daily_actual as (
    select x.user_id, x.dimension, x.day, x.value, sum(x.events) as events, sum(x.failures) as failures,
           sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms, sum(x.timed_events) as timed_events,
           sum(x.cost) as cost, min(x.first_at) as first_at, max(x.last_at) as last_at
      from (
        select t.user_id, t.dimension, t.day, t.value, t.events::numeric as events, t.failures::numeric as failures,
               t.quantity::numeric as quantity, t.duration_ms::numeric as duration_ms,
               t.timed_events::numeric as timed_events, t.cost, t.first_at, t.last_at
          from tally.user_daily t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.cutoff_day
        union all
        select p.user_id, d.name, p.day, v.value, p.events, p.failures, p.quantity, p.duration_ms, p.timed_events,
               p.cost, case when p.is_use then p.occurred_at end, case when p.is_use then p.occurred_at end
          from pending p
         cross join tally.dimensions d
         cross join lateral (select tally._dimension_value(d.keys, p.kind, p.attributes, p.plan) as value) v
         where p.day >= p.cutoff_day and v.value is not null
      ) as x
     group by 1, 2, 3, 4
  ), daily as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.dimension, a.dimension),
                  coalesce(e.day, a.day), coalesce(e.value, a.value)) as label,
           (e.events, e.failures, e.quantity, e.duration_ms, e.timed_events, e.cost, e.first_at, e.last_at)
             is distinct from (a.events, a.failures, a.quantity, a.duration_ms, a.timed_events, a.cost, a.first_at, a.last_at)
             as drift
      from daily_expected e
      full join daily_actual a using (user_id, dimension, day, value)
  ),

  -- -------------------------------------------------------------- billing periods (from the first rebuilt day)
  periods_expected as (
    select c.user_id, tally._period_start(c.day, c.anchor_day) as period_start, c.kind, sum(c.events) as events,
           sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.cost) as cost
      from counted c
     where c.billable
     group by 1, 2, 3
  ), periods_actual as (
    select x.user_id, x.period_start, x.kind, sum(x.events) as events, sum(x.quantity) as quantity,
           sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from (
        select t.user_id, t.period_start, t.kind, t.events::numeric as events, t.quantity::numeric as quantity,
               t.duration_ms::numeric as duration_ms, t.cost
          from tally.user_periods t
        union all
        select p.user_id, tally._period_start(p.day, p.anchor_day), p.kind, p.events, p.quantity, p.duration_ms, p.cost
          from pending p
         where p.billable
      ) as x
     group by 1, 2, 3
  ), periods as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.period_start, a.period_start),
                  coalesce(e.kind, a.kind)) as label,
           coalesce(e.period_start, a.period_start) as period_start,
           (e.events, e.quantity, e.duration_ms, e.cost) is distinct from (a.events, a.quantity, a.duration_ms, a.cost)
             as drift
      from periods_expected e
      full join periods_actual a using (user_id, period_start, kind)
  ),

  -- -------------------------------------------------------------- usage per UTC day, plan, dimension value and kind
  values_expected as (
    select c.user_id, c.utc_day as day, coalesce(c.plan, '') as plan, d.name as dimension, v.value, c.kind,
           sum(c.events) as events, count(*) filter (where c.is_use) as succeeded, sum(c.failures) as failures,
           sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.timed_events) as timed_events,
           sum(c.cost) as cost, coalesce(sum(c.cost) filter (where c.billable), 0) as billable_cost,
           min(c.occurred_at) filter (where c.is_use) as first_at, max(c.occurred_at) filter (where c.is_use) as last_at
      from counted c
     cross join tally.dimensions d
     cross join lateral (select tally._dimension_value(d.keys, c.kind, c.attributes, c.plan) as value) v
     where c.utc_day >= c.utc_cutoff_day and v.value is not null
     group by 1, 2, 3, 4, 5, 6
  ), values_actual as (
    select x.user_id, x.day, x.plan, x.dimension, x.value, x.kind, sum(x.events) as events, sum(x.succeeded) as succeeded,
           sum(x.failures) as failures, sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms,
           sum(x.timed_events) as timed_events, sum(x.cost) as cost, sum(x.billable_cost) as billable_cost,
           min(x.first_at) as first_at, max(x.last_at) as last_at
      from (
        select t.user_id, t.day, t.plan, t.dimension, t.value, t.kind, t.events::numeric as events,
               t.succeeded::numeric as succeeded, t.failures::numeric as failures, t.quantity, t.duration_ms,
               t.timed_events::numeric as timed_events, t.cost, t.billable_cost, t.first_at, t.last_at
          from tally.user_daily_values t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.utc_day, coalesce(p.plan, ''), d.name, v.value, p.kind, p.events,
               case when p.is_use then 1 else 0 end,
               p.failures, p.quantity, p.duration_ms, p.timed_events, p.cost, case when p.billable then p.cost else 0 end,
               case when p.is_use then p.occurred_at end, case when p.is_use then p.occurred_at end
          from pending p
         cross join tally.dimensions d
         cross join lateral (select tally._dimension_value(d.keys, p.kind, p.attributes, p.plan) as value) v
         where p.utc_day >= p.utc_cutoff_day and v.value is not null
      ) as x
     group by 1, 2, 3, 4, 5, 6
  ), daily_values as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.day, a.day), coalesce(e.plan, a.plan),
                  coalesce(e.dimension, a.dimension), coalesce(e.value, a.value), coalesce(e.kind, a.kind)) as label,
           (e.events, e.succeeded, e.failures, e.quantity, e.duration_ms, e.timed_events, e.cost, e.billable_cost,
            e.first_at, e.last_at)
             is distinct from (a.events, a.succeeded, a.failures, a.quantity, a.duration_ms, a.timed_events, a.cost,
                               a.billable_cost, a.first_at, a.last_at) as drift
      from values_expected e
      full join values_actual a using (user_id, day, plan, dimension, value, kind)
  ),

  -- -------------------------------------------------------------- funnel steps: first and last use per kind, UTC day, plan
  kind_days_expected as (
    select c.user_id, c.kind, c.utc_day as day, coalesce(c.plan, '') as plan, min(c.occurred_at) as first_at,
           max(c.occurred_at) as last_at
      from counted c
     where c.is_use and c.utc_day >= c.utc_cutoff_day
     group by 1, 2, 3, 4
  ), kind_days_actual as (
    select x.user_id, x.kind, x.day, x.plan, min(x.first_at) as first_at, max(x.last_at) as last_at
      from (
        select t.user_id, t.kind, t.day, t.plan, t.first_at, t.last_at
          from tally.user_kind_days t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.kind, p.utc_day, coalesce(p.plan, ''), p.occurred_at, p.occurred_at
          from pending p
         where p.is_use and p.utc_day >= p.utc_cutoff_day
      ) as x
     group by 1, 2, 3, 4
  ), kind_days as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.kind, a.kind), coalesce(e.day, a.day),
                  coalesce(e.plan, a.plan)) as label,
           (e.first_at, e.last_at) is distinct from (a.first_at, a.last_at) as drift
      from kind_days_expected e
      full join kind_days_actual a using (user_id, kind, day, plan)
  ),

  -- -------------------------------------------------------------- operational counters per UTC day, plan, kind, format
  ops_expected as (
    select c.user_id, c.utc_day as day, coalesce(c.plan, '') as plan, c.kind,
           coalesce(left(c.attributes ->> 'format', 64), '') as format,
           count(*) filter (where c.is_use)::numeric as succeeded, sum(c.failures)::numeric as failed,
           count(*) filter (where c.is_use and c.timed_events = 1)::numeric as timed_events,
           coalesce(sum(c.duration_ms) filter (where c.is_use and c.timed_events = 1), 0) as duration_ms,
           coalesce(sum(c.cost) filter (where c.billable), 0) as billable_cost
      from counted c
     where c.utc_day >= c.utc_cutoff_day and (c.is_use or c.failures <> 0 or (c.billable and c.cost <> 0))
     group by 1, 2, 3, 4, 5
  ), ops_actual as (
    select x.user_id, x.day, x.plan, x.kind, x.format, sum(x.succeeded) as succeeded, sum(x.failed) as failed,
           sum(x.timed_events) as timed_events, sum(x.duration_ms) as duration_ms, sum(x.billable_cost) as billable_cost
      from (
        select t.user_id, t.day, t.plan, t.kind, t.format, t.succeeded::numeric as succeeded,
               t.failed::numeric as failed, t.timed_events::numeric as timed_events, t.duration_ms, t.billable_cost
          from tally.user_daily_ops t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.utc_day, coalesce(p.plan, ''), p.kind, coalesce(left(p.attributes ->> 'format', 64), ''),
               case when p.is_use then 1 else 0 end, p.failures,
               case when p.is_use and p.timed_events = 1 then 1 else 0 end,
               case when p.is_use and p.timed_events = 1 then p.duration_ms else 0 end,
               case when p.billable then p.cost else 0 end
          from pending p
         where p.utc_day >= p.utc_cutoff_day and (p.is_use or p.failures <> 0 or (p.billable and p.cost <> 0))
      ) as x
     group by 1, 2, 3, 4, 5
  ), daily_ops as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.day, a.day), coalesce(e.plan, a.plan),
                  coalesce(e.kind, a.kind), coalesce(e.format, a.format)) as label,
           (e.succeeded, e.failed, e.timed_events, e.duration_ms, e.billable_cost)
             is distinct from (a.succeeded, a.failed, a.timed_events, a.duration_ms, a.billable_cost) as drift
      from ops_expected e
      full join ops_actual a using (user_id, day, plan, kind, format)
  ),

  -- -------------------------------------------------------------- duration histograms of timed successes
  durations_expected as (
    select c.user_id, c.utc_day as day, coalesce(c.plan, '') as plan, c.kind,
           coalesce(left(c.attributes ->> 'format', 64), '') as format, tally._duration_bucket(c.duration_ms) as bucket,
           count(*)::numeric as events
      from counted c
     where c.utc_day >= c.utc_cutoff_day and c.is_use and c.timed_events = 1
     group by 1, 2, 3, 4, 5, 6
  ), durations_actual as (
    select x.user_id, x.day, x.plan, x.kind, x.format, x.bucket, sum(x.events) as events
      from (
        select t.user_id, t.day, t.plan, t.kind, t.format, t.bucket, t.events
          from tally.user_daily_durations t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.utc_day, coalesce(p.plan, ''), p.kind, coalesce(left(p.attributes ->> 'format', 64), ''),
               tally._duration_bucket(p.duration_ms), 1
          from pending p
         where p.utc_day >= p.utc_cutoff_day and p.is_use and p.timed_events = 1
      ) as x
     group by 1, 2, 3, 4, 5, 6
  ), durations as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.day, a.day), coalesce(e.plan, a.plan),
                  coalesce(e.kind, a.kind), coalesce(e.format, a.format), coalesce(e.bucket, a.bucket)) as label,
           e.events is distinct from a.events as drift
      from durations_expected e
      full join durations_actual a using (user_id, day, plan, kind, format, bucket)
  ),

  -- -------------------------------------------------------------- hour-of-week histogram (lifetime, user's zone)
  hours_expected as (
    select c.user_id, ((extract(isodow from c.local_at)::integer - 1) * 24 + extract(hour from c.local_at)::integer) as how,
           sum(c.events) as events, sum(c.failures) as failures, sum(c.quantity) as quantity,
           sum(c.duration_ms) as duration_ms, sum(c.cost) as cost
      from counted c
     where c.whole
     group by 1, 2
  ), hours_actual as (
    select x.user_id, x.how, sum(x.events) as events, sum(x.failures) as failures, sum(x.quantity) as quantity,
           sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from (
        select t.user_id, t.how::integer as how, t.events::numeric as events, t.failures::numeric as failures,
               t.quantity, t.duration_ms, t.cost
          from tally.user_hours t join scope sc on sc.user_id = t.user_id
         where sc.whole
        union all
        select p.user_id, (extract(isodow from p.local_at)::integer - 1) * 24 + extract(hour from p.local_at)::integer,
               p.events, p.failures, p.quantity, p.duration_ms, p.cost
          from pending p
         where p.whole
      ) as x
     group by 1, 2
  ), hours as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.how, a.how)) as label,
           (e.events, e.failures, e.quantity, e.duration_ms, e.cost)
             is distinct from (a.events, a.failures, a.quantity, a.duration_ms, a.cost) as drift
      from hours_expected e
      full join hours_actual a using (user_id, how)
  ),

  -- -------------------------------------------------------------- sessions (lifetime)
  sessions_expected as (
    select c.user_id, k.session_id, sum(c.events) as events,
           sum(c.events) filter (where c.kind = 'session') as explicit_events,
           sum(c.duration_ms) filter (where c.kind = 'session') as explicit_ms,
           min(c.occurred_at) filter (where c.is_use) as first_at,
           max(c.occurred_at + c.duration_ms * interval '1 millisecond') filter (where c.is_use) as last_end_at
      from counted c
     cross join lateral (select tally._session_key(c.kind, c.attributes, c.occurred_at) as session_id) k
     where c.whole and k.session_id is not null
     group by 1, 2
  ), sessions_actual as (
    select x.user_id, x.session_id, sum(x.events) as events, sum(x.explicit_events) as explicit_events,
           sum(x.explicit_ms) as explicit_ms, min(x.first_at) as first_at, max(x.last_end_at) as last_end_at
      from (
        select t.user_id, t.session_id, t.events::numeric as events, t.explicit_events::numeric as explicit_events,
               t.explicit_ms, t.first_at, t.last_end_at
          from tally.user_sessions t join scope sc on sc.user_id = t.user_id
         where sc.whole
        union all
        select p.user_id, k.session_id, p.events, case when p.kind = 'session' then p.events else 0 end,
               case when p.kind = 'session' then p.duration_ms else 0 end,
               case when p.is_use then p.occurred_at end,
               case when p.is_use then p.occurred_at + p.duration_ms * interval '1 millisecond' end
          from pending p
         cross join lateral (select tally._session_key(p.kind, p.attributes, p.occurred_at) as session_id) k
         where p.whole and k.session_id is not null
      ) as x
     group by 1, 2
  ), sessions as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.session_id, a.session_id)) as label,
           (e.events, coalesce(e.explicit_events, 0), coalesce(e.explicit_ms, 0), e.first_at, e.last_end_at)
             is distinct from (a.events, a.explicit_events, a.explicit_ms, a.first_at, a.last_end_at) as drift
      from sessions_expected e
      full join sessions_actual a using (user_id, session_id)
  )
  select 'daily rollups vs log'::text, count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from daily c
  union all
  select 'billing periods vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from periods c join scope sc on sc.user_id = c.user_id
   where c.period_start >= sc.cutoff_day
  union all
  select 'user_daily_values vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from daily_values c
  union all
  select 'user_kind_days vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from kind_days c
  union all
  select 'user_daily_ops vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from daily_ops c
  union all
  select 'user_daily_durations vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from durations c
  union all
  select 'user_hours vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from hours c
  union all
  select 'user_sessions vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from sessions c;

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

  -- ==========================================================================
  -- The log vs. its exactly-once keys (samples are event ids).
  -- ==========================================================================
  return query
  with log_rows as materialized (
    select e.user_id, e.event_id, k.event_id is not null as keyed,
           coalesce(k.occurred_at = e.occurred_at, false) as named, k.occurred_at as key_at
      from tally.usage_events e
      left join tally.event_keys k on k.user_id = e.user_id and k.event_id = e.event_id
  ), per_key as (
    select r.user_id, r.event_id, count(*) filter (where r.named) as named,
           count(*) filter (where not r.named) as others, min(r.key_at) as key_at
      from log_rows r
     where r.keyed
     group by r.user_id, r.event_id
  ), repeated as (
    -- Rows the write path would have skipped as duplicates (they were written past the
    -- insert trigger): more than one row named by a key, and rows under a key that names
    -- another time, unless that key's own row is gone from the retained log (then a
    -- rebuild re-keys the first of them).
    select p.event_id,
           case when p.named = 0 and p.key_at >= since then greatest(p.others - 1, 0)
                else p.others + greatest(p.named - 1, 0) end as extra
      from per_key p
  ), orphans as (
    select k.event_id,
           not exists (select from per_key p
                        where p.user_id = k.user_id and p.event_id = k.event_id and p.named > 0) as gone
      from tally.event_keys k
     where k.occurred_at >= since
  )
  -- Every retained log row has a key (a row without one was written past the insert trigger).
  select 'log rows vs exactly-once keys'::text, count(*), count(*) filter (where not r.keyed),
         (array_agg(r.event_id order by r.event_id) filter (where not r.keyed))[1:sample_size]
    from log_rows r
  union all
  -- Every key inside the retained log has its row.
  select 'exactly-once keys vs log rows', count(*), count(*) filter (where o.gone),
         (array_agg(o.event_id::text order by o.event_id) filter (where o.gone))[1:sample_size]
    from orphans o
  union all
  -- No user's event_id is in the log twice.
  select 'duplicate log rows', count(*), coalesce(sum(x.extra), 0)::bigint,
         (array_agg(x.event_id order by x.event_id) filter (where x.extra > 0))[1:sample_size]
    from repeated x;
end
$$;

comment on function tally.verify(integer) is
  'Recomputes every table derived from the log (rollups, usage per UTC day and value, funnel days, operational counters, duration histograms, hour-of-week histogram, sessions) from the retained log, compares the log with its exactly-once keys, and reports per check how many keys were compared, how many drifted and a sample of drifted keys (user first, then the table''s key; event ids for the key checks). All drifted = 0 means the aggregates are exact. docs/operations.md says which command repairs each check.';
