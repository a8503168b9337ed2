-- Drops whole monthly partitions of the raw log that end before now() - keep; rollups stay.
-- Called by DBAs, `pgtally retention` and schedules. Pending deltas are merged first, so nothing is lost.
create or replace function tally.apply_retention(keep interval)
returns table (partition_name text, range_start date, range_end date, rows_dropped bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- Waiting for a partition's ACCESS EXCLUSIVE lock while holding the merge lock would stall writers and merges
-- behind any open transaction on the log: give up after 2 s (55P03) and let the next scheduled run try again.
set lock_timeout = '2s'
as $$
declare
  horizon timestamptz;
  part    record;
  n       bigint;
begin
  if keep is null or keep < interval '1 day' then
    raise exception using errcode = 'PT011', column = 'keep',
      message = format('keep must be at least 1 day (got %s)', coalesce(keep::text, 'null'));
  end if;
  horizon := now() - keep;
  -- The merge lock keeps merges out while partitions go; merging first guarantees every
  -- delta of a dropped row is already in the rollups.
  perform tally._lock('merge');
  for part in
    select c.relname, c.oid,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)')) as bounds
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'tally.usage_events'::regclass
       and c.relname <> 'usage_events_default'
     order by c.relname
  loop
    continue when part.bounds is null or part.bounds[2]::timestamptz > horizon;
    -- Writers of late events into this month finish before the lock is granted.
    execute format('lock table tally.%I in access exclusive mode', part.relname);
    loop
      exit when tally._merge_pending_locked(100000) = 0;
    end loop;
    execute format('select count(*) from tally.%I', part.relname) into n;
    execute format('drop table tally.%I', part.relname);
    partition_name := part.relname;
    range_start := (part.bounds[1]::timestamptz at time zone 'UTC')::date;
    range_end := (part.bounds[2]::timestamptz at time zone 'UTC')::date;
    rows_dropped := n;
    insert into tally.retention_runs (partition_name, range_start, range_end, rows_dropped)
    values (partition_name, range_start, range_end, rows_dropped);
    return next;
  end loop;
end
$$;

comment on function tally.apply_retention(interval) is
  'Drops raw log partitions whose whole month ends before now() - keep, after merging pending deltas. Lifetime, daily and billing rollups and the deduplication keys are kept. Returns the partitions dropped.';
