-- Applier: adds the merge batch (pg_temp._tally_merge) to the admin analytics sources: funnel step days,
-- daily operational counters and duration histograms. Called by tally._merge_pending_locked only.
create or replace function tally._apply_admin()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Per-user rows only (keys led by user_id, no platform counters: those live in
  -- the materialized views). Merges run one at a time and upsert in key order.

  -- Funnels: the first and last succeeded original event per user, kind and UTC day.
  insert into tally.user_kind_days as t (user_id, kind, day, first_at, last_at)
  select m.user_id, m.kind, (m.occurred_at at time zone 'UTC')::date, min(m.occurred_at), max(m.occurred_at)
    from pg_temp._tally_merge m
   where m.is_use
   group by 1, 2, 3
   order by 1, 2, 3
  on conflict (user_id, kind, day) do update
    set first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)
   where excluded.first_at < t.first_at or excluded.last_at > t.last_at;

  -- Reliability and activity: attempts (succeeded originals, failures), their
  -- durations, and the net billable cost (reversals and amendments included).
  insert into tally.user_daily_ops as t
    (user_id, day, kind, format, succeeded, failed, timed_events, duration_ms, billable_cost)
  select m.user_id, m.day, m.kind, coalesce(left(m.attributes ->> 'format', 64), ''),
         count(*) filter (where m.is_use), sum(m.failures),
         count(*) filter (where m.is_use and m.timed_events = 1),
         coalesce(sum(m.duration_ms) filter (where m.is_use and m.timed_events = 1), 0),
         coalesce(sum(m.cost) filter (where m.billable), 0)
    from pg_temp._tally_merge m
   where m.is_use or m.failures <> 0 or (m.billable and m.cost <> 0)
   group by 1, 2, 3, 4
   order by 1, 2, 3, 4
  on conflict (user_id, day, kind, format) do update set
    succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed,
    timed_events = t.timed_events + excluded.timed_events, duration_ms = t.duration_ms + excluded.duration_ms,
    billable_cost = t.billable_cost + excluded.billable_cost;

  -- Duration histograms of succeeded originals that reported a duration.
  insert into tally.user_daily_durations as t (user_id, day, kind, format, bucket, events)
  select m.user_id, m.day, m.kind, coalesce(left(m.attributes ->> 'format', 64), ''),
         tally._duration_bucket(m.duration_ms), count(*)
    from pg_temp._tally_merge m
   where m.is_use and m.timed_events = 1
   group by 1, 2, 3, 4, 5
   order by 1, 2, 3, 4, 5
  on conflict (user_id, day, kind, format, bucket) do update set events = t.events + excluded.events;
end
$$;

comment on function tally._apply_admin() is
  'Merge applier for the admin analytics (internal): first and last use per kind and UTC day (funnels), daily operational counters and duration histograms per user.';
