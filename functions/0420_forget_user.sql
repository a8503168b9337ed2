-- Forgets a user: replaces their user_id by a fresh pseudonym in every table of the schema.
-- Called by the application on an erasure request (GDPR); platform totals and billing stay correct.
create or replace function tally.forget_user(user_id text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  pseudonym text := 'forgotten-' || gen_random_uuid()::text;
  t         record;
  n         bigint;
  total     bigint := 0;
  distributed boolean;
  dist_tables regclass[] := '{}'::regclass[];
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT001', column = 'user_id', message = 'user_id is required';
  end if;
  -- A producer's open transaction may hold one of the user's quota or subscription lock rows
  -- (check_quota holds it to the end of its transaction): wait for those first, without holding
  -- the merge lock, so that merges go on meanwhile.
  perform from tally.user_locks l where l.user_id = forget_user.user_id for update;
  -- No merge may move this user's deltas while ids change.
  perform tally._lock('merge');
  distributed := tally._is_distributed();
  perform set_config('tally.erasing', 'on', true);
  if distributed then
    -- Dynamic: the catalog table exists only where Citus is installed.
    execute format('select coalesce(array_agg(p.logicalrelid), ''{}'') from %s p where p.partmethod = ''h''',
                   'pg_catalog.pg_dist_partition') into dist_tables;
    -- The shard triggers on the workers do not see this transaction's settings: the log's
    -- triggers step aside for this transaction instead (the owner may; writers wait on the lock).
    -- The copies then keep their recorded_at and plan, and the originals can be deleted.
    alter table tally.usage_events disable trigger user;
  end if;
  -- Every table with a user_id column, including those later features add; the
  -- table names come from the catalog, the ids travel as parameters.
  for t in
    select c.oid::regclass as rel
      from pg_catalog.pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
       and exists (select from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped)
     order by c.relname
  loop
    if t.rel = any (dist_tables) then
      -- Citus never changes a row's distribution column: copy the user's rows under the pseudonym
      -- (to the pseudonym's shard) and delete the originals, in this transaction.
      execute format('insert into %1$s select (pg_catalog.jsonb_populate_record(null::%1$s, pg_catalog.to_jsonb(x)'
                     ' || pg_catalog.jsonb_build_object(''user_id'', $1::text))).* from %1$s x where x.user_id = $2', t.rel)
        using pseudonym, forget_user.user_id;
      execute format('delete from %s where user_id = $1', t.rel) using forget_user.user_id;
    else
      execute format('update %s set user_id = $1 where user_id = $2', t.rel) using pseudonym, forget_user.user_id;
    end if;
    get diagnostics n = row_count;
    total := total + n;
  end loop;
  perform set_config('tally.erasing', 'off', true);
  if distributed then
    alter table tally.usage_events enable trigger user;
  end if;
  if total = 0 then
    return null;  -- unknown or already forgotten: nothing to do
  end if;
  insert into tally.erasures (pseudonym, rows_changed) values (pseudonym, total);
  return pseudonym;
end
$$;

comment on function tally.forget_user(text) is
  'Erasure: replaces a user''s id by a random pseudonym in the log, keys, deltas, rollups and settings (every table with user_id), so totals and billing stay correct but the user cannot be found by id. Returns the pseudonym, or NULL when the id is unknown (idempotent). Logged in tally.erasures.';
