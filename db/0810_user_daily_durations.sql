-- Log-scale duration histograms per user, UTC day, plan in force, kind and format, kept by tally._apply_admin.
-- Lets the reliability view compute p50/p95/p99 without scanning the raw log.
create table tally.user_daily_durations (
  user_id text     not null,
  day     date     not null,
  plan    text     not null,
  kind    text     not null,
  format  text     not null,
  bucket  smallint not null,
  events  bigint   not null default 0,
  primary key (user_id, day, plan, kind, format, bucket)
) with (fillfactor = 80);

comment on table tally.user_daily_durations is
  'Histogram of the durations of succeeded timed events per user, UTC day, plan in force ('''' when none), kind and format: bucket = tally._duration_bucket(duration_ms), 8 buckets per doubling (internal; maintained by tally._apply_admin, read by tally.admin_reliability_mv and by reliability over a range of days).';

-- Reliability over a range of days reads the range's rows, not every user's history.
create index user_daily_durations_day on tally.user_daily_durations (day);
