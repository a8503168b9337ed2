-- Lock a global lock row: blocking, or (wait => false) returning false at once when it is held.
-- Called by merge_pending, apply_retention, forget_user, rebuild, ensure_partitions and refresh_analytics.
create or replace function tally._lock(name text, wait boolean default true)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if wait then
    perform from tally.locks l where l.name = _lock.name for update;
    if not found then
      raise exception 'pgtally: unknown lock %', name;
    end if;
    return true;
  end if;
  perform from tally.locks l where l.name = _lock.name for update skip locked;
  return found;
end
$$;

comment on function tally._lock(text, boolean) is
  'Locks the global lock row name until the end of the transaction (wait => false: returns false instead of waiting); only callable by the owner, so no other role can hold it (internal).';
