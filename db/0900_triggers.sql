-- ============================================================================
-- Triggers on the usage log (after the functions they call).
-- ============================================================================

-- Rows inserted by tally.record_usage_batch arrive with recorded_at set and are
-- processed set-wise there; writers hold no privilege on recorded_at, so every
-- other insert goes through this trigger.
create trigger usage_events_before_insert_record
  before insert on tally.usage_events
  for each row
  when (new.recorded_at is null)
  execute function tally._trg_usage_events_before_insert_record();

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

-- Statement triggers are not cloned to partitions: the default partition gets
-- its own here, monthly partitions get theirs from tally.ensure_partitions.
select tally._protect_partition('tally.usage_events_default');
