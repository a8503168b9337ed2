-- The value of one declared dimension for an event: attribute values for keys joined by '/'.
-- Called by the merge, the rebuild and every read that adds pending deltas.
create or replace function tally._dimension_value(keys text[], kind text, attributes jsonb)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when cardinality(keys) = 1 then
      nullif(case when keys[1] = 'kind' then kind else attributes ->> keys[1] end, '')
    else (
      select case when count(*) = count(v) then string_agg(v, '/' order by i) end
        from unnest(keys) with ordinality as k(key, i),
             lateral (select nullif(case when k.key = 'kind' then kind else attributes ->> k.key end, '') as v) as x
    )
  end
$$;

comment on function tally._dimension_value(text[], text, jsonb) is
  'Value of a dimension declared with these keys for an event of this kind and attributes; NULL when any key is missing or empty.';
