-- Records the rows of the session's staging table that tally.begin_staging created, and empties it.
-- Called by tally.record_usage_staged only when the owner role owns that table.
create or replace function tally._record_staged()
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  added integer;
begin
  -- Only the table tally.begin_staging made: owned by this function's owner (so no other role can
  -- have added a rule, a policy, a trigger or a child table to it), a plain temporary table.
  perform from pg_catalog.pg_class c
    where c.oid = pg_catalog.to_regclass('pg_temp.tally_staging')
      and c.relowner = (select p.proowner from pg_catalog.pg_proc p
                         where p.oid = 'tally._record_staged()'::pg_catalog.regprocedure)
      and c.relkind = 'r' and c.relpersistence = 't'
      and not c.relrowsecurity and not c.relhasrules and not c.relhastriggers and not c.relhassubclass;
  if not found then
    raise exception using errcode = 'PT011',
      message = 'pg_temp.tally_staging was not created by tally.begin_staging: drop it and call tally.begin_staging()';
  end if;
  if tally._is_distributed() then
    -- Citus: the batch goes through tally.record_usage_batch's distributed path, as arrays.
    select tally.record_usage_batch(
             array_agg(s.event_id), array_agg(s.user_id), array_agg(s.kind), array_agg(s.quantity),
             array_agg(s.occurred_at), array_agg(s.duration_ms), array_agg(s.cost), array_agg(s.status),
             array_agg(s.error_code), array_agg(s.billable), array_agg(s.attributes), array_agg(s.corrects_event_id))
      into added
      from pg_temp.tally_staging s;
  else
    added := tally._record_rows(true, null, null, null, null, null, null, null, null, null, null, null, null);
  end if;
  -- TRUNCATE: a new empty file instead of dead rows for the next chunk of this transaction to scan.
  truncate pg_temp.tally_staging;
  return coalesce(added, 0);
end
$$;

comment on function tally._record_staged() is
  'Records the rows COPYed into the staging table made by tally.begin_staging (owner-owned, checked), set-wise, and empties it; returns how many were new. Called by tally.record_usage_staged.';
