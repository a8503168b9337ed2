-- Puts the statement-level triggers of the usage log on one partition: immutability, and the batch-token check.
-- Called by tally.ensure_partitions, at install and by upgrades (idempotent): partitions get cloned row triggers only.
create or replace function tally._protect_partition(part regclass)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tally._is_distributed() then
    -- Citus allows row triggers only on distributed tables: a distributed log keeps the
    -- cloned row triggers, and TRUNCATE is refused by privileges (see pgtally distribute).
    return;
  end if;
  execute format('create or replace trigger usage_events_before_change_refuse_statement before update or delete on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
  execute format('create or replace trigger usage_events_before_truncate_refuse before truncate on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
  -- A direct INSERT into a partition fires the partition's statement triggers, not the parent's.
  execute format('create or replace trigger usage_events_before_insert_check_batch_token before insert on %s '
                 'for each statement when (current_setting(''tally.batch_token'', true) <> '''') '
                 'execute function tally._trg_usage_events_check_batch_token()', part);
end
$$;

comment on function tally._protect_partition(regclass) is
  'Creates (or replaces) the statement triggers of a log partition: UPDATE/DELETE/TRUNCATE refusal and the batch-token check of direct INSERTs (internal).';
