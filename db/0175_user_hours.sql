-- Hour-of-week activity histogram per user, in the user's local time (Monday 00:00-00:59 is hour 0).
-- Written by the merge applier tally._apply_engagement; read by tally.hour_of_week_heatmap (which adds pending deltas).
create table tally.user_hours (
  user_id     text     not null,
  how         smallint not null
              constraint how_between_0_and_167 check (how between 0 and 167),
  events      bigint   not null default 0,
  failures    bigint   not null default 0,
  quantity    numeric  not null default 0,
  duration_ms numeric  not null default 0,
  cost        numeric  not null default 0,
  primary key (user_id, how)
) with (fillfactor = 80);

comment on table tally.user_hours is
  'Merged lifetime activity per user and local hour of the week (internal; read through tally.hour_of_week_heatmap). Local time is taken in the user''s zone when the delta is merged.';
comment on column tally.user_hours.how is 'Hour of the week in local time: (ISO weekday - 1) * 24 + hour, so 0 is Monday 00:00-00:59 and 167 Sunday 23:00-23:59.';
