-- ============================================================================
-- Admin analytics privileges: tally_analyst calls the admin functions (a
-- tally_reader gets 42501) and reads nothing per group directly: the
-- materialized views hold every group, however small, so only the functions
-- (SECURITY DEFINER) read them and hide the groups smaller than the minimum
-- group size. The refresh is for the owner, analysts and schedules;
-- scheduling and the minimum group size are for the owner. Readers read the
-- anonymized peer distribution.
-- ============================================================================

grant usage on schema tally to tally_analyst;

-- The materialized views: the owner's (and the definer functions'). Analysts
-- read the refresh log, the declared dimensions and the minimum group size.
revoke all on tally.admin_totals_mv, tally.admin_overview_mv, tally.admin_daily, tally.admin_daily_stale, tally.admin_activity_mv,
              tally.admin_leaderboards_mv, tally.admin_reliability_mv, tally.admin_error_codes_mv,
              tally.admin_cohorts_mv, tally.admin_funnel_mv, tally.peer_distribution_mv, tally.refresh_log, tally.analytics_settings,
              tally.dashboard_funnels
  from public;
grant select on tally.refresh_log, tally.dimensions, tally.analytics_settings, tally.dashboard_funnels to tally_analyst;
-- Row-level security is enabled on every table (db/0990); analysts read the one settings row.
create policy "analysts read the analytics settings" on tally.analytics_settings
  for select to tally_analyst using (true);
create policy "analysts read the declared funnels" on tally.dashboard_funnels
  for select to tally_analyst using (true);

-- The peer distribution holds no user id, no smallest or largest usage and
-- nothing of small groups (db/0838): readers may select it; tally.peer_percentile
-- (SECURITY INVOKER) reads it with the reader's rights.
grant select on tally.peer_distribution_mv to tally_reader;

-- Per-user sources of the views: no analyst reads them (the admin functions read them as definer); like
-- every per-user table, a reader sees its own rows through row-level security (db/0990).
revoke all on tally.user_kind_days, tally.user_daily_ops, tally.user_daily_durations, tally.user_daily_values from public;

-- Functions: nothing for PUBLIC; the read API (SECURITY DEFINER, each applying the minimum group size) for analysts.
-- The helpers (tally._analytics_*) read per-user rows: the owner's alone (the views and the definer functions run them).
revoke execute on function
  tally._apply_admin(),
  tally._funnel_next(text, text, timestamptz, timestamptz, text),
  tally._funnel_counts(text[], timestamptz, timestamptz, text),
  tally._funnel_table(text[], bigint[], timestamptz),
  tally._check_funnel_steps(text[]),
  tally.declare_funnel(text[]),
  tally.drop_funnel(text[]),
  tally._paying_users(timestamptz, timestamptz, text),
  tally._paying_users_by_day(date, date, text),
  tally._analytics_min_group_size(),
  tally.set_min_group_size(integer),
  tally._duration_bucket(bigint),
  tally._duration_bucket_ms(smallint),
  tally._analytics_span(timestamptz, timestamptz),
  tally._analytics_deltas(timestamptz, timestamptz),
  tally._analytics_delta_values(timestamptz, timestamptz, text),
  tally._analytics_delta_ops(timestamptz, timestamptz),
  tally._analytics_values(timestamptz, timestamptz, text, text),
  tally._analytics_overview(timestamptz, timestamptz, text),
  tally._analytics_reliability(timestamptz, timestamptz, text),
  tally._analytics_error_codes(timestamptz, timestamptz, text),
  tally._analytics_windows(timestamptz),
  tally._analytics_range(text, date, date, text),
  tally._analytics_plan(text),
  tally._analytics_views(),
  tally._check_window(text),
  tally._refreshed_at(text),
  tally._interval_to_cron(interval),
  tally.refresh_analytics(),
  tally.analytics_freshness(),
  tally.schedule_refresh(interval),
  tally.admin_overview(text, date, date, text),
  tally.admin_totals(text, text, date, date, text),
  tally.admin_leaderboard(text, text, text, integer, date, date, text),
  tally.admin_trend(text, text[], date, date, text),
  tally.admin_active_users(date, date, text),
  tally.admin_week_over_week(date, text, integer, text),
  tally.admin_funnel(text[], timestamptz, timestamptz, text),
  tally.admin_funnel_window(text[], text, text),
  tally.admin_reliability(text, text, date, date, text),
  tally.admin_error_codes(text, integer, boolean, date, date, text),
  tally.admin_cohorts(date, date, text)
  from public;

grant execute on function
  tally._dimension_keys(text),
  tally._analytics_views(),
  tally._check_window(text),
  tally._refreshed_at(text),
  tally.analytics_freshness(),
  tally.refresh_analytics(),
  tally.admin_overview(text, date, date, text),
  tally.admin_totals(text, text, date, date, text),
  tally.admin_leaderboard(text, text, text, integer, date, date, text),
  tally.admin_trend(text, text[], date, date, text),
  tally.admin_active_users(date, date, text),
  tally.admin_week_over_week(date, text, integer, text),
  tally.admin_funnel(text[], timestamptz, timestamptz, text),
  tally.admin_funnel_window(text[], text, text),
  tally.admin_reliability(text, text, date, date, text),
  tally.admin_error_codes(text, integer, boolean, date, date, text),
  tally.admin_cohorts(date, date, text)
  to tally_analyst;

-- The refresh runs as the views' owner (SECURITY DEFINER); scheduling and the minimum group size are a DBA's job.
grant execute on function tally.refresh_analytics(), tally.schedule_refresh(interval), tally._interval_to_cron(interval),
                          tally.set_min_group_size(integer), tally.declare_funnel(text[]), tally.drop_funnel(text[])
  to tally_owner;
