-- Whether the usage log is distributed by Citus (pgtally distribute has run on this coordinator).
-- Called by the merge, ensure_partitions, _protect_partition and forget_user to pick their distributed path.
create or replace function tally._is_distributed()
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  found_it boolean;
begin
  if to_regclass('pg_catalog.pg_dist_partition') is null then
    return false;  -- no Citus on this server
  end if;
  -- Dynamic: the catalog table exists only where Citus is installed.
  execute format('select exists (select from %s p where p.logicalrelid = $1)', 'pg_catalog.pg_dist_partition')
     into found_it using to_regclass('tally.usage_events');
  return found_it;
end
$$;

comment on function tally._is_distributed() is
  'True when tally.usage_events is a Citus distributed table (after `pgtally distribute`); false on a single server (internal).';
