-- The analytics the refresh keeps (the admin views, the users' peer distribution, the daily totals table), in refresh order.
-- Called by tally.refresh_analytics and tally.analytics_freshness (the one list to extend with a new view).
create or replace function tally._analytics_views()
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select array['admin_totals_mv', 'admin_overview_mv', 'admin_activity_mv', 'admin_leaderboards_mv',
               'admin_reliability_mv', 'admin_error_codes_mv', 'admin_cohorts_mv', 'admin_funnel_mv',
               'peer_distribution_mv', 'admin_daily']
$$;

comment on function tally._analytics_views() is
  'Names of what tally.refresh_analytics keeps in the tally schema, in refresh order: the admin materialized views, the peer distribution, then tally.admin_daily (a table re-aggregated for the days that changed since the last refresh) (internal).';
