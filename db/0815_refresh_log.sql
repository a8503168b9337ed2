-- One row per materialized view refreshed by tally.refresh_analytics: start, end, duration, rows.
-- Written by tally.refresh_analytics; read by tally.analytics_freshness and every admin function (refreshed_at).
create table tally.refresh_log (
  id           bigint      generated always as identity primary key,
  run_started  timestamptz not null,
  view_name    text        not null,
  started_at   timestamptz not null,
  finished_at  timestamptz not null,
  duration_ms  numeric     not null,
  row_count    bigint      not null
);

comment on table tally.refresh_log is
  'Refresh history of the admin materialized views: per view, when its refresh started (the moment its data were taken), ended, how long it took and how many rows it holds. Kept 30 days (internal; read through tally.analytics_freshness).';

create index refresh_log_view on tally.refresh_log (view_name, started_at desc);
