-- Makes every object of the schema safe by default: nothing for PUBLIC, everything owned by tally_owner.
-- Called at the end of the install (db/0995_ownership.sql) and by the migration runner after every upgrade, so an object a later revision adds is covered even if the revision forgets.
create or replace function tally._secure_objects()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  obj record;
begin
  -- PUBLIC: no privilege on the schema, any table, view, sequence or function
  -- (PostgreSQL grants EXECUTE on new functions to PUBLIC unless told otherwise).
  revoke all on schema tally from public;
  revoke all on all tables in schema tally from public;
  revoke all on all sequences in schema tally from public;
  revoke execute on all functions in schema tally from public;
  revoke execute on all procedures in schema tally from public;

  if not (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user)
     and not pg_catalog.pg_has_role(current_user, 'tally_owner', 'member') then
    raise notice 'pgtally: % is neither superuser nor a member of tally_owner; objects stay owned by %',
      current_user, current_user;
    return;
  end if;
  -- Functions tally_owner creates itself (a DBA working as the owner) are not executable by PUBLIC either.
  alter default privileges for role tally_owner revoke execute on functions from public;
  execute 'alter schema tally owner to tally_owner';
  for obj in
    select c.oid::pg_catalog.regclass as rel, c.relkind
      from pg_catalog.pg_class c
     where c.relnamespace = 'tally'::pg_catalog.regnamespace and c.relkind in ('r', 'p', 'v', 'm')  -- owned sequences follow their table
       and c.relowner <> 'tally_owner'::pg_catalog.regrole
  loop
    if obj.relkind = 'v' then
      execute pg_catalog.format('alter view %s owner to tally_owner', obj.rel);
    elsif obj.relkind = 'm' then
      execute pg_catalog.format('alter materialized view %s owner to tally_owner', obj.rel);
    else
      execute pg_catalog.format('alter table %s owner to tally_owner', obj.rel);
    end if;
  end loop;
  for obj in
    select p.oid::pg_catalog.regprocedure as fn, p.prokind
      from pg_catalog.pg_proc p
     where p.pronamespace = 'tally'::pg_catalog.regnamespace
       and p.proowner <> 'tally_owner'::pg_catalog.regrole
  loop
    if obj.prokind = 'p' then
      execute pg_catalog.format('alter procedure %s owner to tally_owner', obj.fn);
    else
      execute pg_catalog.format('alter function %s owner to tally_owner', obj.fn);
    end if;
  end loop;
end
$$;

comment on function tally._secure_objects() is
  'Revokes every privilege of PUBLIC in the schema and gives every object to tally_owner (when the caller may); run after every install and upgrade, so objects added later are safe by default (internal, owner only).';
