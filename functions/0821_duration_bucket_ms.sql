-- The duration a histogram bucket stands for: its geometric midpoint 2^((b + 0.5) / 8) ms, rounded (0 for bucket -1).
-- Called by tally.admin_reliability_mv to turn percentile buckets into milliseconds.
create or replace function tally._duration_bucket_ms(bucket smallint)
returns bigint
language sql
immutable
parallel safe
as $$
  select case when bucket OPERATOR(pg_catalog.<) 0 then 0
              else pg_catalog.round(pg_catalog.power(2::pg_catalog.float8,
                     (bucket::pg_catalog.float8 OPERATOR(pg_catalog.+) 0.5::pg_catalog.float8)
                     OPERATOR(pg_catalog./) 8::pg_catalog.float8))
         end::pg_catalog.int8
$$;

comment on function tally._duration_bucket_ms(smallint) is
  'Representative duration in ms of a histogram bucket of tally._duration_bucket: the geometric midpoint, within 4.4% of every duration in the bucket.';
