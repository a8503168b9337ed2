-- Returns the keys of a declared dimension or raises PT010 naming it.
-- Called by every read function that takes a dimension name.
create or replace function tally._dimension_keys(dimension text)
returns text[]
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  found_keys text[];
begin
  select d.keys into found_keys from tally.dimensions d where d.name = dimension;
  if found_keys is null then
    raise exception using errcode = 'PT010', column = 'dimension',
      message = format('dimension %L is not declared', dimension),
      hint = 'Declared dimensions are listed in tally.dimensions; add one with tally.declare_dimension.';
  end if;
  return found_keys;
end
$$;

comment on function tally._dimension_keys(text) is
  'Keys of a declared dimension; raises PT010 when the dimension is not declared (internal).';
