-- Row and statement trigger on tally.usage_events: refuses UPDATE, DELETE and TRUNCATE.
-- The log is immutable; corrections are new rows (corrects_event_id), retention drops whole partitions,
-- erasure (tally.forget_user) is the one UPDATE allowed.
create or replace function tally._trg_usage_events_refuse_change()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- tally.forget_user (SECURITY DEFINER, the owner) pseudonymizes user_id in place; on Citus,
  -- where a distribution column never changes, it copies the user's rows and deletes the
  -- originals. Only roles that may UPDATE or DELETE the log at all (the owner) reach this branch.
  if current_setting('tally.erasing', true) = 'on' then
    if tg_op = 'UPDATE' then
      return new;
    elsif tg_op = 'DELETE' then
      return old;
    end if;
  end if;
  raise exception using
    errcode = 'PT009',
    message = format('tally.usage_events is immutable: %s is refused', tg_op),
    hint = 'Record a correction (corrects_event_id, or tally.reverse_usage) instead; old partitions are dropped by tally.apply_retention.';
end
$$;

comment on function tally._trg_usage_events_refuse_change() is
  'Refuses UPDATE, DELETE and TRUNCATE on the usage log (SQLSTATE PT009).';
