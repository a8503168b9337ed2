-- Platform totals per dimension, plan, UTC day and value: the trend series (events per day per kind, voice, model, ...).
-- Kept by tally.refresh_analytics, which re-aggregates only the days whose per-user rows changed since the last
-- refresh (tally.admin_daily_stale); read by tally.admin_trend and tally.admin_week_over_week.
create table tally.admin_daily (
  dimension   text    not null,
  plan        text    not null,
  day         date    not null,
  value       text    not null,
  events      bigint  not null,
  succeeded   bigint  not null,
  failures    bigint  not null,
  quantity    numeric,
  unit        text,
  duration_ms numeric not null,
  cost        numeric not null,
  users       bigint  not null,
  primary key (dimension, plan, day, value)
);

comment on table tally.admin_daily is
  'Platform totals per dimension, plan in force (''*'' = all plans, '''' = none), UTC day and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (NULL both when the value''s quantities that day count in different units), duration, cost and users active with that value that day. From tally.user_daily_values plus pending deltas, as of the refresh: each refresh re-aggregates the days listed in tally.admin_daily_stale and the days with pending deltas (every day the first time, after a unit or dimension change, and on Citus), so after a refresh during which no writer committed its rows equal a full re-aggregation (tally._admin_daily_rows(NULL)); a change committed during a refresh is taken by the next. Read through tally.admin_trend and tally.admin_week_over_week.';

-- The UTC days whose rows in tally.admin_daily the next refresh re-aggregates. Written by a statement trigger on
-- tally.user_daily_values (every writer: the merge, rebuild, erasure, a dimension's backfill), and by a change of
-- a kind's unit or of the dimensions (every day); the refresh deletes the rows it has taken into account.
-- Insert-only: a transaction adds (day, its own id) and never touches another transaction's row, so writers
-- marking the same days never wait for each other (nor for the refresh), in any order of statements.
create table tally.admin_daily_stale (
  day     date not null,
  version xid8 not null,
  primary key (day, version)
);

comment on table tally.admin_daily_stale is
  'UTC days to re-aggregate into tally.admin_daily at the next refresh; day -infinity means every day. version is the transaction that marked the day (one row per day and marking transaction, insert-only): the refresh deletes the rows it read, so a day marked by a transaction the refresh could not see stays marked for the next one.';
