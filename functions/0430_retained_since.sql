-- Where the retained raw log starts: the end of the latest month dropped by retention, or -infinity.
-- Called by tally.verify and tally.rebuild, which only recompute what the retained log covers.
create or replace function tally._retained_since()
returns timestamptz
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r), '-infinity')
$$;

comment on function tally._retained_since() is
  'Start of the retained raw log: the end of the latest partition tally.apply_retention dropped, or -infinity (internal).';
