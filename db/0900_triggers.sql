-- ============================================================================
-- Triggers on the usage log (after the functions they call).
-- ============================================================================

-- Rows inserted by tally.record_usage_batch arrive with recorded_at set and are
-- processed set-wise there. The batch path is told apart by what a plain INSERT
-- cannot do: it sets tally.batch_token to a one-time token it has just issued,
-- which the statement trigger below checks and consumes before any row arrives.
-- Every other insert goes through the row trigger: a writer's (writers hold no
-- privilege on recorded_at), and the owner's or a superuser's even with
-- recorded_at set (the trigger overwrites it with the database's time).
-- Row triggers are cloned to every partition, so a direct insert into one is
-- checked the same way.
create trigger usage_events_before_insert_record
  before insert on tally.usage_events
  for each row
  when (new.recorded_at is null or coalesce(current_setting('tally.batch_token', true), '') = '')
  execute function tally._trg_usage_events_before_insert_record();

-- A forged or replayed tally.batch_token fails the INSERT (42501); the WHEN
-- clause (false when the setting is unset or empty) keeps ordinary inserts from
-- calling the function at all.
create trigger usage_events_before_insert_check_batch_token
  before insert on tally.usage_events
  for each statement
  when (current_setting('tally.batch_token', true) <> '')
  execute function tally._trg_usage_events_check_batch_token();

create trigger usage_events_before_change_refuse
  before update or delete on tally.usage_events
  for each row
  execute function tally._trg_usage_events_refuse_change();

-- The statement trigger also refuses an UPDATE or DELETE that matches no row.
create trigger usage_events_before_change_refuse_statement
  before update or delete on tally.usage_events
  for each statement
  execute function tally._trg_usage_events_refuse_change();

create trigger usage_events_before_truncate_refuse
  before truncate on tally.usage_events
  for each statement
  execute function tally._trg_usage_events_refuse_change();

-- Statement triggers are not cloned to partitions (and fire only for the table a
-- statement names): the default partition gets its own here, monthly partitions
-- get theirs from tally.ensure_partitions.
select tally._protect_partition('tally.usage_events_default');

-- ============================================================================
-- Triggers that mark the days of tally.admin_daily the next refresh re-aggregates.
-- ============================================================================

-- Every change of the per-user rollup marks its UTC days, whoever makes it
-- (the merge, rebuild, erasure, a dimension's backfill): the arguments name the
-- transition tables. Citus allows no statement trigger on a distributed table:
-- `pgtally distribute` drops these, and the refresh re-aggregates every day there.
create trigger user_daily_values_after_insert_mark_days
  after insert on tally.user_daily_values
  referencing new table as new_rows
  for each statement
  execute function tally._trg_admin_daily_stale('new_rows');

create trigger user_daily_values_after_update_mark_days
  after update on tally.user_daily_values
  referencing old table as old_rows new table as new_rows
  for each statement
  execute function tally._trg_admin_daily_stale('old_rows', 'new_rows');

create trigger user_daily_values_after_delete_mark_days
  after delete on tally.user_daily_values
  referencing old table as old_rows
  for each statement
  execute function tally._trg_admin_daily_stale('old_rows');

create trigger user_daily_values_after_truncate_mark_days
  after truncate on tally.user_daily_values
  for each statement
  execute function tally._trg_admin_daily_stale();

-- A kind's unit decides which quantities add up: a new unit (a kind added, removed or given
-- another unit) marks every day; a change of a display name or of nothing marks none.
create trigger kinds_after_insert_mark_days
  after insert on tally.kinds
  referencing new table as new_rows
  for each statement
  execute function tally._trg_admin_daily_stale('new_rows');

create trigger kinds_after_update_mark_days
  after update on tally.kinds
  referencing old table as old_rows new table as new_rows
  for each statement
  execute function tally._trg_admin_daily_stale('old_rows', 'new_rows');

create trigger kinds_after_delete_mark_days
  after delete on tally.kinds
  referencing old table as old_rows
  for each statement
  execute function tally._trg_admin_daily_stale('old_rows');

create trigger kinds_after_truncate_mark_days
  after truncate on tally.kinds
  for each statement
  execute function tally._trg_admin_daily_stale();

-- A dimension's keys decide which pending deltas have a value (a merge of deltas that have
-- none under any dimension writes no row, so marks no day): any change marks every day.
create trigger dimensions_after_change_mark_days
  after insert or update or delete or truncate on tally.dimensions
  for each statement
  execute function tally._trg_admin_daily_stale();
