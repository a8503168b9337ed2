-- The log-scale histogram bucket of a duration: floor(8 * log2(ms)), -1 for 0 ms (8 buckets per doubling, <= 4.4% error).
-- Called by the merge applier tally._apply_admin for every timed succeeded event.
--
-- Not pinned to a search_path on purpose, so it is inlined in the merge (like
-- tally._dimension_value): it names only pg_catalog functions and operators.
create or replace function tally._duration_bucket(ms bigint)
returns smallint
language sql
immutable
parallel safe
as $$
  select case when ms OPERATOR(pg_catalog.<) 1 then -1
              else pg_catalog.floor(pg_catalog.ln(ms::pg_catalog.float8) OPERATOR(pg_catalog.*) 8::pg_catalog.float8
                                    OPERATOR(pg_catalog./) pg_catalog.ln(2::pg_catalog.float8)
                                    OPERATOR(pg_catalog.+) 1e-9::pg_catalog.float8)
         end::pg_catalog.int2
$$;

comment on function tally._duration_bucket(bigint) is
  'Histogram bucket of a duration in ms: floor(8 * log2(ms)) (bucket b holds [2^(b/8), 2^((b+1)/8)) ms), -1 for 0 ms.';
