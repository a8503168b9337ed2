-- Operational counters per user, UTC day, plan in force, kind and format (attributes.format), kept by tally._apply_admin.
-- Source of reliability, activity (DAU/WAU/MAU) and cohort views, and of reliability over a range of days.
create table tally.user_daily_ops (
  user_id       text    not null,
  day           date    not null,
  plan          text    not null,
  kind          text    not null,
  format        text    not null,
  succeeded     bigint  not null default 0,
  failed        bigint  not null default 0,
  timed_events  bigint  not null default 0,
  duration_ms   numeric not null default 0,
  billable_cost numeric not null default 0,
  primary key (user_id, day, plan, kind, format)
) with (fillfactor = 80);

comment on table tally.user_daily_ops is
  'Per user, UTC day, plan in force ('''' when none), kind and format (attributes.format, '''' when absent): succeeded and failed attempts, durations of succeeded attempts, and net billable cost (internal; maintained by tally._apply_admin, read by the admin materialized views and by admin reads over a range of days). Attempts are operational: a later reversal does not undo a success.';
comment on column tally.user_daily_ops.day is 'The UTC day of the events: every admin figure is in UTC.';
comment on column tally.user_daily_ops.plan is 'The plan in force when the events occurred (tally.usage_events.plan; '''' when none).';
comment on column tally.user_daily_ops.succeeded is 'Succeeded original events (a reversal or amendment does not change it).';
comment on column tally.user_daily_ops.failed is 'Failed events.';
comment on column tally.user_daily_ops.timed_events is 'Succeeded original events that reported a duration.';
comment on column tally.user_daily_ops.duration_ms is 'Sum of the durations of the timed succeeded events.';
comment on column tally.user_daily_ops.billable_cost is 'Net cost of billable usage (reversals and amendments included): the user paid that day when it is > 0.';

-- Reliability over a range of days reads the range's rows, not every user's history.
create index user_daily_ops_day on tally.user_daily_ops (day);
