-- Applier: adds the merge batch (pg_temp._tally_merge) to user_daily, user_totals and user_periods.
-- Called by tally._merge_pending_locked and tally.rebuild.
create or replace function tally._apply_rollups(only_dimension text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  with expanded as (
    select m.*, d.name as dimension, tally._dimension_value(d.keys, m.kind, m.attributes, m.plan) as value
      from pg_temp._tally_merge m
     cross join tally.dimensions d
     where only_dimension is null or d.name = only_dimension
  ), daily as (
    insert into tally.user_daily as t
      (user_id, dimension, day, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
    select e.user_id, e.dimension, e.day, e.value, sum(e.events), sum(e.failures), sum(e.quantity),
           sum(e.duration_ms), sum(e.timed_events), sum(e.cost),
           min(e.occurred_at) filter (where e.is_use), max(e.occurred_at) filter (where e.is_use)
      from expanded e
     where e.value is not null
     group by e.user_id, e.dimension, e.day, e.value
     order by e.user_id, e.dimension, e.day, e.value
    on conflict (user_id, dimension, day, value) do update set
      events = t.events + excluded.events, failures = t.failures + excluded.failures,
      quantity = t.quantity + excluded.quantity, duration_ms = t.duration_ms + excluded.duration_ms,
      timed_events = t.timed_events + excluded.timed_events, cost = t.cost + excluded.cost,
      first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)
  )
  insert into tally.user_totals as t
    (user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
  select e.user_id, e.dimension, e.value, sum(e.events), sum(e.failures), sum(e.quantity),
         sum(e.duration_ms), sum(e.timed_events), sum(e.cost),
         min(e.occurred_at) filter (where e.is_use), max(e.occurred_at) filter (where e.is_use)
    from expanded e
   where e.value is not null
   group by e.user_id, e.dimension, e.value
   order by e.user_id, e.dimension, e.value
  on conflict (user_id, dimension, value) do update set
    events = t.events + excluded.events, failures = t.failures + excluded.failures,
    quantity = t.quantity + excluded.quantity, duration_ms = t.duration_ms + excluded.duration_ms,
    timed_events = t.timed_events + excluded.timed_events, cost = t.cost + excluded.cost,
    first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at);

  if only_dimension is not null then
    return;  -- a dimension backfill leaves billing periods alone
  end if;
  insert into tally.user_periods as t (user_id, period_start, kind, events, quantity, duration_ms, cost)
  select m.user_id, tally._period_start(m.day, m.anchor_day), m.kind, sum(m.events), sum(m.quantity),
         sum(m.duration_ms), sum(m.cost)
    from pg_temp._tally_merge m
   where m.billable
   group by 1, 2, 3
   order by 1, 2, 3
  on conflict (user_id, period_start, kind) do update set
    events = t.events + excluded.events, quantity = t.quantity + excluded.quantity,
    duration_ms = t.duration_ms + excluded.duration_ms, cost = t.cost + excluded.cost;
  perform tally._record_quota_alerts();  -- threshold alerts, where the usage is folded in (functions/0878)
end
$$;

comment on function tally._apply_rollups(text) is
  'Merge applier: adds the deltas in pg_temp._tally_merge to the lifetime, daily and billing-period rollups, or only to one dimension''s lifetime and daily rollups (internal).';
