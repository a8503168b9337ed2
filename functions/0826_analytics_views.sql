-- The analytics materialized views (the admin views and the users' peer distribution), in refresh order.
-- Called by tally.refresh_analytics and tally.analytics_freshness (the one list to extend with a new view).
create or replace function tally._analytics_views()
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select array['admin_totals_mv', 'admin_overview_mv', 'admin_daily_mv', 'admin_activity_mv', 'admin_leaderboards_mv',
               'admin_reliability_mv', 'admin_error_codes_mv', 'admin_cohorts_mv', 'admin_funnel_mv',
               'peer_distribution_mv']
$$;

comment on function tally._analytics_views() is
  'Names of the analytics materialized views in the tally schema (the admin views, then the peer distribution), in refresh order (internal).';
