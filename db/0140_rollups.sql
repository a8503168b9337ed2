-- ============================================================================
-- Rollups: lifetime per user and dimension value, daily per user, dimension
-- value and local day, billing period per user and kind. Every key is led by
-- user_id so the schema distributes by user (Citus) and no row is shared by
-- two users. Written only by tally.merge_pending and tally.rebuild.
-- Sums of amounts (quantity, duration_ms, cost) are numeric, so any number of
-- events at the largest accepted amounts adds up exactly and never overflows;
-- counts of events stay bigint.
-- ============================================================================

create table tally.user_totals (
  user_id      text        not null,
  dimension    text        not null,
  value        text        not null,
  events       bigint      not null default 0,
  failures     bigint      not null default 0,
  quantity     numeric     not null default 0,
  duration_ms  numeric     not null default 0,
  timed_events bigint      not null default 0,
  cost         numeric     not null default 0,
  first_at     timestamptz,
  last_at      timestamptz,
  primary key (user_id, dimension, value)
) with (fillfactor = 80);

comment on table tally.user_totals is
  'Merged lifetime totals per user, dimension and value (internal; read through tally.lifetime_totals, which adds pending deltas).';

create table tally.user_daily (
  user_id      text        not null,
  dimension    text        not null,
  day          date        not null,
  value        text        not null,
  events       bigint      not null default 0,
  failures     bigint      not null default 0,
  quantity     numeric     not null default 0,
  duration_ms  numeric     not null default 0,
  timed_events bigint      not null default 0,
  cost         numeric     not null default 0,
  first_at     timestamptz,
  last_at      timestamptz,
  primary key (user_id, dimension, day, value)
) with (fillfactor = 80);

comment on table tally.user_daily is
  'Merged daily rollups per user, dimension, local day (in the user''s time zone) and value (internal; read through tally.daily_totals). Kept forever: raw retention never drops them.';

create table tally.user_periods (
  user_id      text        not null,
  period_start date        not null,
  kind         text        not null,
  events       bigint      not null default 0,
  quantity     numeric     not null default 0,
  duration_ms  numeric     not null default 0,
  cost         numeric     not null default 0,
  primary key (user_id, period_start, kind)
) with (fillfactor = 80);

comment on table tally.user_periods is
  'Merged billing-period counters per user and kind: billable, succeeded usage only. A new period is a new key, so nothing is ever reset (internal; read through tally.period_totals).';
