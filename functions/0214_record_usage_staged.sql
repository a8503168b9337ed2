-- Records every row of pg_temp.tally_staging (all-or-nothing, exactly-once) and empties the table.
-- Called by the Python client's record_many after COPY into the staging table, in the same transaction.
create or replace function tally.record_usage_staged()
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  added integer;
begin
  if to_regclass('pg_temp.tally_staging') is null then
    raise exception using errcode = 'PT011',
      message = 'no staging table in this session: call tally.begin_staging() and COPY into pg_temp.tally_staging first';
  end if;
  -- The table tally.begin_staging makes belongs to the owner role, whose batch path reads it directly.
  if (select c.relowner from pg_catalog.pg_class c where c.oid = to_regclass('pg_temp.tally_staging'))
     = (select p.proowner from pg_catalog.pg_proc p where p.oid = 'tally._record_staged()'::pg_catalog.regprocedure) then
    return tally._record_staged();
  end if;
  -- A staging table of this session's own (made by an earlier pgtally, or by the caller) is read
  -- here, as the caller, and handed over as arrays: the owner never reads a relation the caller controls.
  select tally.record_usage_batch(
           array_agg(s.event_id), array_agg(s.user_id), array_agg(s.kind), array_agg(s.quantity),
           array_agg(s.occurred_at), array_agg(s.duration_ms), array_agg(s.cost), array_agg(s.status),
           array_agg(s.error_code), array_agg(s.billable), array_agg(s.attributes), array_agg(s.corrects_event_id))
    into added
    from pg_temp.tally_staging s;
  delete from pg_temp.tally_staging;
  return coalesce(added, 0);
end
$$;

comment on function tally.record_usage_staged() is
  'Records the rows COPYed into pg_temp.tally_staging (validated all-or-nothing, exactly-once) and empties it; returns how many were new.';
