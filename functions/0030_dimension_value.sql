-- The value of one declared dimension for an event: attribute values for keys joined by '/'.
-- Called by the merge, the rebuild and every read that adds pending deltas.
--
-- Not pinned to a search_path on purpose: a pinned SQL function is never inlined,
-- and this one runs once per event and dimension. It names only its arguments
-- and pg_catalog operators (spelled OPERATOR(pg_catalog.x)), so no caller's
-- search_path can change what it does.
create or replace function tally._dimension_value(keys text[], kind text, attributes jsonb, plan text)
returns text
language sql
immutable
parallel safe
as $$
  select case
    when pg_catalog.cardinality(keys) OPERATOR(pg_catalog.=) 1 then
      -- Over 200 characters (rare) the key is shortened by tally._bounded_key; the test
      -- comes first so the common path stays an inlined expression.
      case when pg_catalog.length(
                  case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind when keys[1] OPERATOR(pg_catalog.=) 'plan' then plan
                       else attributes OPERATOR(pg_catalog.->>) keys[1] end)
                OPERATOR(pg_catalog.>) 200
           then tally._bounded_key(
                  case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind when keys[1] OPERATOR(pg_catalog.=) 'plan' then plan
                       else attributes OPERATOR(pg_catalog.->>) keys[1] end)
           else nullif(
                  case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind when keys[1] OPERATOR(pg_catalog.=) 'plan' then plan
                       else attributes OPERATOR(pg_catalog.->>) keys[1] end,
                  '')
      end
    else tally._dimension_value_combined(keys, kind, attributes, plan)
  end
$$;

comment on function tally._dimension_value(text[], text, jsonb, text) is
  'Value of a dimension declared with these keys for an event of this kind, attributes and plan in force (the key kind means the kind, the key plan the plan, any other key an attribute); NULL when any key is missing or empty; over 200 characters shortened by tally._bounded_key.';
