-- Funnel steps: per user, kind, UTC day and plan in force, the first and last time of a succeeded original event, kept by tally._apply_admin.
-- Read by tally.admin_funnel only (analysts never read it directly: it is per-user data).
create table tally.user_kind_days (
  user_id  text        not null,
  kind     text        not null,
  day      date        not null,
  plan     text        not null,
  first_at timestamptz not null,
  last_at  timestamptz not null,
  primary key (user_id, kind, day, plan),
  constraint user_kind_day_times_in_order check (first_at <= last_at)
) with (fillfactor = 90);

comment on table tally.user_kind_days is
  'Per user, kind, UTC day and plan in force: the first and last succeeded original event (a reversal does not undo a step), maintained by the merge (tally._apply_admin); the funnel source, so a funnel reads only the days of its timeframe and never scans the raw log (internal; read through tally.admin_funnel).';
comment on column tally.user_kind_days.day is 'The UTC day of the events (not the user''s local day): funnel timeframes are exact instants.';
comment on column tally.user_kind_days.plan is 'The plan in force when the events occurred (tally.usage_events.plan; '''' when none), so a funnel can follow one plan''s events.';
comment on column tally.user_kind_days.first_at is 'Earliest succeeded original event of the kind that day; a late, earlier event moves it back.';
comment on column tally.user_kind_days.last_at is 'Latest succeeded original event of the kind that day.';

-- Funnel entry: users with a step-1 event on the timeframe's days; later steps read by primary key.
create index user_kind_days_kind on tally.user_kind_days (kind, day, user_id);
