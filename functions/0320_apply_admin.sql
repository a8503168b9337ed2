-- Applier: adds the merge batch (pg_temp._tally_merge) to the admin analytics sources: usage per dimension value,
-- funnel step days, daily operational counters and duration histograms. Called by tally._merge_pending_locked only.
create or replace function tally._apply_admin()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Per-user rows only (keys led by user_id, no platform counters: those live in
  -- the materialized views). Merges run one at a time and upsert in key order.
  -- Every key has the UTC day and the plan in force at the event (m.plan, ''
  -- when none), so each admin figure can be read for a range of UTC days and a
  -- plan. tally._analytics_delta_values and tally._analytics_delta_ops fold
  -- deltas the same way (for pending deltas and the raw log's partial days).

  -- Usage per declared dimension, value and kind.
  insert into tally.user_daily_values as t
    (user_id, day, plan, dimension, value, kind, events, succeeded, failures, quantity, duration_ms, timed_events, cost,
     billable_cost, first_at, last_at)
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''), d.name, v.value, m.kind,
         sum(m.events), count(*) filter (where m.is_use), sum(m.failures), sum(m.quantity), sum(m.duration_ms),
         sum(m.timed_events), sum(m.cost), coalesce(sum(m.cost) filter (where m.billable), 0),
         min(m.occurred_at) filter (where m.is_use), max(m.occurred_at) filter (where m.is_use)
    from pg_temp._tally_merge m
   cross join tally.dimensions d
   cross join lateral (select tally._dimension_value(d.keys, m.kind, m.attributes, m.plan) as value) v
   where v.value is not null
   group by 1, 2, 3, 4, 5, 6
   order by 1, 2, 3, 4, 5, 6
  on conflict (user_id, day, plan, dimension, value, kind) do update set
    events = t.events + excluded.events, succeeded = t.succeeded + excluded.succeeded,
    failures = t.failures + excluded.failures, quantity = t.quantity + excluded.quantity,
    duration_ms = t.duration_ms + excluded.duration_ms, timed_events = t.timed_events + excluded.timed_events,
    cost = t.cost + excluded.cost, billable_cost = t.billable_cost + excluded.billable_cost,
    first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at);

  -- Funnels: the first and last succeeded original event per user, kind, UTC day and plan.
  insert into tally.user_kind_days as t (user_id, kind, day, plan, first_at, last_at)
  select m.user_id, m.kind, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''),
         min(m.occurred_at), max(m.occurred_at)
    from pg_temp._tally_merge m
   where m.is_use
   group by 1, 2, 3, 4
   order by 1, 2, 3, 4
  on conflict (user_id, kind, day, plan) do update
    set first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)
   where excluded.first_at < t.first_at or excluded.last_at > t.last_at;

  -- Reliability and activity: attempts (succeeded originals, failures), their
  -- durations, and the net billable cost (reversals and amendments included).
  insert into tally.user_daily_ops as t
    (user_id, day, plan, kind, format, succeeded, failed, timed_events, duration_ms, billable_cost)
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''), m.kind,
         coalesce(left(m.attributes ->> 'format', 64), ''),
         count(*) filter (where m.is_use), sum(m.failures),
         count(*) filter (where m.is_use and m.timed_events = 1),
         coalesce(sum(m.duration_ms) filter (where m.is_use and m.timed_events = 1), 0),
         coalesce(sum(m.cost) filter (where m.billable), 0)
    from pg_temp._tally_merge m
   where m.is_use or m.failures <> 0 or (m.billable and m.cost <> 0)
   group by 1, 2, 3, 4, 5
   order by 1, 2, 3, 4, 5
  on conflict (user_id, day, plan, kind, format) do update set
    succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed,
    timed_events = t.timed_events + excluded.timed_events, duration_ms = t.duration_ms + excluded.duration_ms,
    billable_cost = t.billable_cost + excluded.billable_cost;

  -- Duration histograms of succeeded originals that reported a duration.
  insert into tally.user_daily_durations as t (user_id, day, plan, kind, format, bucket, events)
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''), m.kind,
         coalesce(left(m.attributes ->> 'format', 64), ''), tally._duration_bucket(m.duration_ms), count(*)
    from pg_temp._tally_merge m
   where m.is_use and m.timed_events = 1
   group by 1, 2, 3, 4, 5, 6
   order by 1, 2, 3, 4, 5, 6
  on conflict (user_id, day, plan, kind, format, bucket) do update set events = t.events + excluded.events;
end
$$;

comment on function tally._apply_admin() is
  'Merge applier for the admin analytics (internal): usage per dimension value, first and last use per kind, daily operational counters and duration histograms per user, UTC day and plan in force.';
