-- Per-user sessions for the engagement profile: one row per user and session key.
-- Written by the merge applier tally._apply_engagement; read by tally.engagement_profile (which adds pending deltas).
create table tally.user_sessions (
  user_id         text        not null,
  session_id      text        not null,
  events          bigint      not null default 0,
  explicit_events bigint      not null default 0,
  explicit_ms     numeric     not null default 0,
  first_at        timestamptz,
  last_end_at     timestamptz,
  primary key (user_id, session_id)
) with (fillfactor = 80);

comment on table tally.user_sessions is
  'Merged sessions per user (internal; read through tally.engagement_profile). A session is the events sharing attributes.session_id, or one event of kind session (keyed by its session_id, else by its occurred_at). Its length is the summed duration_ms of its session-kind events when it has any, else last_end_at - first_at.';
comment on column tally.user_sessions.session_id is
  'attributes.session_id (non-empty; over 200 characters shortened by tally._bounded_key), or ''at:<epoch seconds of occurred_at>'' for a session-kind event without one (see tally._session_key).';
comment on column tally.user_sessions.events is 'Succeeded events of the session (signed: reversals subtract); a session counts while this is positive.';
comment on column tally.user_sessions.explicit_events is 'Net succeeded events of kind session in this session.';
comment on column tally.user_sessions.explicit_ms is 'Summed duration_ms of the session-kind events (signed: corrections adjust it); numeric, so no number of events overflows it.';
comment on column tally.user_sessions.first_at is 'occurred_at of the first succeeded original event of the session.';
comment on column tally.user_sessions.last_end_at is 'Latest occurred_at + duration_ms of a succeeded original event of the session.';
