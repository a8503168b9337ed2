-- Combined dimensions (several keys): the values joined by '/', NULL when any is missing.
-- Called by tally._dimension_value.
create or replace function tally._dimension_value_combined(keys text[], kind text, attributes jsonb, plan text)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case when count(*) = count(v) then tally._bounded_key(string_agg(v, '/' order by i)) end
    from unnest(keys) with ordinality as k(key, i),
         lateral (select nullif(case k.key when 'kind' then kind when 'plan' then plan else attributes ->> k.key end, '') as v) as x
$$;

comment on function tally._dimension_value_combined(text[], text, jsonb, text) is
  'Value of a dimension of several keys: the attribute values joined by ''/''; NULL when any is missing or empty.';
