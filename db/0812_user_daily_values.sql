-- Platform analytics source: per user, UTC day, plan in force, declared dimension, value and kind, the usage, kept by tally._apply_admin.
-- Read by the admin materialized views (totals, leaderboards, overview, trends) and by admin reads over a range of days.
create table tally.user_daily_values (
  user_id       text        not null,
  day           date        not null,
  plan          text        not null,
  dimension     text        not null,
  value         text        not null,
  kind          text        not null,
  events        bigint      not null default 0,
  succeeded     bigint      not null default 0,
  failures      bigint      not null default 0,
  quantity      numeric     not null default 0,
  duration_ms   numeric     not null default 0,
  timed_events  bigint      not null default 0,
  cost          numeric     not null default 0,
  billable_cost numeric     not null default 0,
  first_at      timestamptz,
  last_at       timestamptz,
  primary key (user_id, day, plan, dimension, value, kind)
) with (fillfactor = 80);

comment on table tally.user_daily_values is
  'Per user, UTC day, plan in force ('''' when none), declared dimension, value and kind (so quantities of different units are never added): events (net of reversals), succeeded attempts, failures, quantity, duration, cost, billable cost, first and last use. Like tally.user_daily, but in UTC days and split by plan, so every admin figure can be read for a range of UTC days and one plan (internal; maintained by tally._apply_admin, read by the admin materialized views and functions).';
comment on column tally.user_daily_values.day is 'The UTC day of the events (tally.user_daily uses the user''s local day): every admin figure is in UTC.';
comment on column tally.user_daily_values.plan is 'The plan in force when the events occurred (tally.usage_events.plan; '''' when none).';
comment on column tally.user_daily_values.kind is 'The kind of the events: a value used by kinds of different units (a plan, a provider) keeps their quantities apart.';
comment on column tally.user_daily_values.events is 'Succeeded events net of reversals, as in tally.user_daily.';
comment on column tally.user_daily_values.succeeded is 'Succeeded original events (attempts: a later reversal does not undo a success).';
comment on column tally.user_daily_values.billable_cost is 'Net cost of billable usage (reversals and amendments included).';
comment on column tally.user_daily_values.first_at is 'First succeeded original event that day (NULL when only failures or corrections).';

-- Totals, leaderboards and trends over a range of days read one dimension's rows of the range.
create index user_daily_values_dimension_day on tally.user_daily_values (dimension, day);
