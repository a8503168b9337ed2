-- Puts the statement-level immutability triggers on one partition of the usage log.
-- Called by tally.ensure_partitions and at install: PostgreSQL clones row triggers to partitions, not statement triggers.
create or replace function tally._protect_partition(part regclass)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  execute format('create trigger usage_events_before_change_refuse_statement before update or delete on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
  execute format('create trigger usage_events_before_truncate_refuse before truncate on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
end
$$;

comment on function tally._protect_partition(regclass) is
  'Creates the UPDATE/DELETE/TRUNCATE-refusing statement triggers on a log partition (internal).';
