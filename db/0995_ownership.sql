-- ============================================================================
-- Ownership: tally_owner owns the schema and every object in it, so SECURITY
-- DEFINER functions run as tally_owner and only its members can migrate.
-- Skipped (with a notice) when the installing role may not give objects away.
-- ============================================================================

do $$
declare
  obj record;
begin
  if not (select rolsuper from pg_roles where rolname = current_user)
     and not pg_has_role(current_user, 'tally_owner', 'member') then
    raise notice 'pgtally: % is neither superuser nor a member of tally_owner; objects stay owned by %',
      current_user, current_user;
    return;
  end if;
  execute 'alter schema tally owner to tally_owner';
  for obj in
    select format('alter %s %s owner to tally_owner',
                  case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
                  c.oid::regclass) as stmt
      from pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')  -- owned sequences follow their table
    union all
    select format('alter %s %s owner to tally_owner', case p.prokind when 'p' then 'procedure' else 'function' end,
                  p.oid::regprocedure)
      from pg_proc p
     where p.pronamespace = 'tally'::regnamespace
  loop
    execute obj.stmt;
  end loop;
end
$$;
