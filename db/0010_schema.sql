-- The tally schema holds every pgtally object.
-- Installed by migrations (Alembic) or from this declarative tree; never by hand.
create schema if not exists tally;

comment on schema tally is
  'pgtally: immutable usage log, trigger-maintained aggregates and the read API. Public API: functions and views; tables are internal unless docs say otherwise.';
