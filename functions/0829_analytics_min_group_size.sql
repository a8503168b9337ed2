-- The minimum group size in force (tally.analytics_settings, default 5): groups of fewer distinct users are not shown.
-- Called by the admin read functions (as the owner) and by the peer distribution view at refresh.
create or replace function tally._analytics_min_group_size()
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select s.min_group_size from tally.analytics_settings s), 5)
$$;

comment on function tally._analytics_min_group_size() is
  'The minimum number of distinct users a group must have to be shown to analysts or published in a peer distribution (tally.analytics_settings, default 5; 1 = show every group) (internal, owner only).';
