-- Declares (or re-declares) a dimension from attribute keys, without writing SQL.
-- Called by product code or `pgtally`; history is backfilled by tally.rebuild.
create or replace function tally.declare_dimension(name text, keys text[], description text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if name is null or name !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception using errcode = 'PT011', column = 'name',
      message = format('dimension name %L must be a lower-case identifier (a-z, 0-9, _)', name);
  elsif keys is null or cardinality(keys) not between 1 and 4 or array_position(keys, null) is not null then
    raise exception using errcode = 'PT011', column = 'keys', message = 'a dimension takes 1 to 4 non-null attribute keys';
  end if;
  insert into tally.dimensions as d (name, keys, description)
  values (declare_dimension.name, declare_dimension.keys, declare_dimension.description)
  on conflict on constraint dimensions_pkey do update set keys = excluded.keys, description = excluded.description;
end
$$;

comment on function tally.declare_dimension(text, text[], text) is
  'Declares a dimension whose value is the event attributes named by keys joined by ''/'' (key ''kind'' = the kind column). New events count at once; run tally.rebuild to backfill history.';
