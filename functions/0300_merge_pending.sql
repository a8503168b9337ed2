-- Folds pending deltas into the rollups (lifetime, daily, billing period) in one transaction.
-- Called on a schedule (pg_cron or `pgtally merge`), by retention and rebuild; reads never need it for exactness.
create or replace function tally._merge_pending_locked(max_rows integer)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  merged integer;
begin
  -- Readers see the deleted deltas and the updated rollups switch over at commit,
  -- so no read ever counts a delta twice or misses it. Keys are upserted in sorted
  -- order and only one merge runs at a time (advisory lock held by the caller).
  with moved as (
    delete from tally.pending_deltas p
     where p.ctid = any (array(select q.ctid from tally.pending_deltas q limit max_rows))
    returning p.*
  ), located as (
    select m.*, (m.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date as day,
           coalesce(s.billing_anchor_day, 1) as anchor_day
      from moved m
      left join tally.user_settings s on s.user_id = m.user_id
  ), expanded as (
    select l.*, d.name as dimension, tally._dimension_value(d.keys, l.kind, l.attributes) as value
      from located l
     cross join tally.dimensions d
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
  ), totals as (
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
      first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)
  ), periods as (
    insert into tally.user_periods as t (user_id, period_start, kind, events, quantity, duration_ms, cost)
    select l.user_id, tally._period_start(l.day, l.anchor_day), l.kind, sum(l.events), sum(l.quantity),
           sum(l.duration_ms), sum(l.cost)
      from located l
     where l.billable
     group by 1, 2, 3
     order by 1, 2, 3
    on conflict (user_id, period_start, kind) do update set
      events = t.events + excluded.events, quantity = t.quantity + excluded.quantity,
      duration_ms = t.duration_ms + excluded.duration_ms, cost = t.cost + excluded.cost
  )
  select count(*) into merged from moved;
  return merged;
end
$$;

comment on function tally._merge_pending_locked(integer) is
  'Moves up to max_rows pending deltas into the rollups; the caller holds the merge advisory lock (internal).';

create or replace function tally.merge_pending(max_rows integer default 100000)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
  if max_rows is null or max_rows < 1 then
    raise exception using errcode = 'PT011', column = 'max_rows', message = 'max_rows must be a positive integer';
  end if;
  -- One merge at a time; a second caller returns 0 at once instead of queueing.
  if not pg_try_advisory_xact_lock(7461, 1) then
    return 0;
  end if;
  return tally._merge_pending_locked(max_rows);
end
$$;

comment on function tally.merge_pending(integer) is
  'Folds up to max_rows pending deltas into the rollups and returns how many it merged; returns 0 at once when another merge is running. Schedule it every minute (reads stay exact either way; merging keeps them fast).';
