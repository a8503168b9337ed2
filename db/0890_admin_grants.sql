-- ============================================================================
-- Admin analytics privileges: only tally_analyst reads the platform views and
-- calls the admin functions (a tally_reader gets 42501); the refresh is for the
-- owner, analysts and schedules; scheduling is for the owner.
-- ============================================================================

grant usage on schema tally to tally_analyst;

-- The materialized views and the refresh log.
revoke all on tally.admin_totals_mv, tally.admin_overview_mv, tally.admin_daily_mv, tally.admin_activity_mv,
              tally.admin_leaderboards_mv, tally.admin_reliability_mv, tally.admin_error_codes_mv,
              tally.admin_cohorts_mv, tally.refresh_log
  from public;
grant select on tally.admin_totals_mv, tally.admin_overview_mv, tally.admin_daily_mv, tally.admin_activity_mv,
                tally.admin_leaderboards_mv, tally.admin_reliability_mv, tally.admin_error_codes_mv,
                tally.admin_cohorts_mv, tally.refresh_log, tally.dimensions
  to tally_analyst;

-- Per-user sources of the views: nobody but the owner (the funnel reads them as definer).
revoke all on tally.user_first_reached, tally.user_daily_ops, tally.user_daily_durations from public;

-- Functions: nothing for PUBLIC; the read API (SECURITY INVOKER, so the grants above apply) for analysts.
revoke execute on function
  tally._apply_admin(),
  tally._duration_bucket(bigint),
  tally._duration_bucket_ms(smallint),
  tally._analytics_windows(),
  tally._analytics_views(),
  tally._check_window(text),
  tally._refreshed_at(text),
  tally._interval_to_cron(interval),
  tally.refresh_analytics(),
  tally.analytics_freshness(),
  tally.schedule_refresh(interval),
  tally.admin_overview(),
  tally.admin_totals(text),
  tally.admin_leaderboard(text, text, text, integer),
  tally.admin_trend(text, text[], date, date),
  tally.admin_active_users(date, date),
  tally.admin_week_over_week(date, text),
  tally.admin_funnel(text[], timestamptz, timestamptz),
  tally.admin_reliability(text, text),
  tally.admin_error_codes(text, integer, boolean),
  tally.admin_cohorts(date, date)
  from public;

grant execute on function
  tally._dimension_keys(text),
  tally._analytics_views(),
  tally._check_window(text),
  tally._refreshed_at(text),
  tally.analytics_freshness(),
  tally.refresh_analytics(),
  tally.admin_overview(),
  tally.admin_totals(text),
  tally.admin_leaderboard(text, text, text, integer),
  tally.admin_trend(text, text[], date, date),
  tally.admin_active_users(date, date),
  tally.admin_week_over_week(date, text),
  tally.admin_funnel(text[], timestamptz, timestamptz),
  tally.admin_reliability(text, text),
  tally.admin_error_codes(text, integer, boolean),
  tally.admin_cohorts(date, date)
  to tally_analyst;

-- The refresh runs as the views' owner (SECURITY DEFINER); scheduling is a DBA's job.
grant execute on function tally.refresh_analytics(), tally.schedule_refresh(interval), tally._interval_to_cron(interval)
  to tally_owner;
