-- Folds pending deltas into the rollups (lifetime, daily, billing period, and the appliers below) in one transaction.
-- Called on a schedule (pg_cron or `pgtally merge`), by retention and rebuild; reads never need it for exactness.
create or replace function tally._merge_pending_locked(max_rows integer)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  merged integer;
begin
  -- The batch of deltas being merged, with each user's local day and billing anchor.
  -- Readers see the deleted deltas and the updated rollups switch over at commit,
  -- so no read ever counts a delta twice or misses it. Only one merge runs at a
  -- time (the merge lock row, held by the caller) and every applier upserts keys in
  -- sorted order.
  perform tally._prepare_merge_batch();

  if not tally._is_distributed() then
    -- One server: claim exactly max_rows deltas by their physical address (the cheapest key).
    with moved as (
      delete from tally.pending_deltas p
       where p.ctid = any (array(select q.ctid from tally.pending_deltas q limit max_rows))
      returning p.*
    )
    insert into pg_temp._tally_merge
    select m.user_id, m.kind, m.occurred_at, m.attributes, m.events, m.failures, m.quantity, m.duration_ms,
           m.timed_events, m.cost, m.billable, m.is_use,
           m.occurred_at at time zone coalesce(s.time_zone, 'UTC'),
           (m.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date,
           coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1),  -- as tally._period_anchor
           m.plan
      from moved m
      left join tally.user_settings s on s.user_id = m.user_id;
  else
    -- Citus cannot address rows by ctid across shards: claim whole users instead (those
    -- owning the first max_rows deltas), so each shard deletes by its distribution key.
    -- A delta a writer commits meanwhile is not in the delete's snapshot and waits for
    -- the next merge, so nothing is counted twice or lost.
    with moved as (
      delete from tally.pending_deltas p
       where p.user_id = any (array(select distinct q.user_id
                                      from (select r.user_id from tally.pending_deltas r limit max_rows) q))
      returning p.*
    )
    insert into pg_temp._tally_merge
    select m.user_id, m.kind, m.occurred_at, m.attributes, m.events, m.failures, m.quantity, m.duration_ms,
           m.timed_events, m.cost, m.billable, m.is_use,
           m.occurred_at at time zone coalesce(s.time_zone, 'UTC'),
           (m.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date,
           coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1),  -- as tally._period_anchor
           m.plan
      from moved m
      left join tally.user_settings s on s.user_id = m.user_id;
  end if;
  get diagnostics merged = row_count;
  if merged = 0 then
    return 0;
  end if;

  perform tally._apply_rollups();
  -- Appliers of later features read pg_temp._tally_merge the same way.
  perform tally._apply_engagement();
  perform tally._apply_admin();
  return merged;
end
$$;

comment on function tally._merge_pending_locked(integer) is
  'Moves up to max_rows pending deltas into pg_temp._tally_merge and runs every applier on them; the caller holds the merge lock (internal).';

create or replace function tally.merge_pending(max_rows integer default 100000)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if max_rows is null or max_rows < 1 then
    raise exception using errcode = 'PT011', column = 'max_rows', message = 'max_rows must be a positive integer';
  end if;
  -- One merge at a time; a second caller returns 0 at once instead of queueing.
  if not tally._lock('merge', wait => false) then
    return 0;
  end if;
  return tally._merge_pending_locked(max_rows);
end
$$;

comment on function tally.merge_pending(integer) is
  'Folds up to max_rows pending deltas into the rollups and returns how many it merged; returns 0 at once when another merge is running. Schedule it every minute (reads stay exact either way; merging keeps them fast).';
