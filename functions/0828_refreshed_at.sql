-- When the data of one admin materialized view were taken (start of its last refresh), NULL if never refreshed.
-- Called by every admin read function to report freshness.
create or replace function tally._refreshed_at(view_name text)
returns timestamptz
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select max(l.started_at) from tally.refresh_log l where l.view_name = _refreshed_at.view_name
$$;

comment on function tally._refreshed_at(text) is
  'Start of the last logged refresh of an admin materialized view (the moment its data reflect), NULL when never refreshed (internal).';
