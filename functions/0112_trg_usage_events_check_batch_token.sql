-- Statement trigger on tally.usage_events and on each of its partitions: admits the setting tally.batch_token
-- only with the one-time token tally.record_usage_batch (or tally.ensure_partitions) issued for this INSERT.
create or replace function tally._trg_usage_events_check_batch_token()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  presented text := current_setting('tally.batch_token', true);
begin
  -- The trigger's WHEN clause already skips inserts without the setting.
  if coalesce(presented, '') = '' then
    return null;
  end if;
  -- The trusted paths insert through the parent table only; the token is consumed
  -- here, once, and must come from this transaction.
  if tg_relid = 'tally.usage_events'::regclass then
    delete from tally.batch_tokens t where t.token = presented and t.xact = pg_current_xact_id();
    if found then
      return null;
    end if;
  end if;
  raise exception using
    errcode = '42501',
    message = format('the setting tally.batch_token is reserved for tally.record_usage_batch; the INSERT into %s does not carry a token it issued',
                     tg_relid::regclass),
    hint = 'Reset tally.batch_token and insert without recorded_at (the database sets it), or call tally.record_usage_batch.';
end
$$;

comment on function tally._trg_usage_events_check_batch_token() is
  'Refuses an INSERT into the usage log made while tally.batch_token is set unless the setting holds the one-time token tally.record_usage_batch issued for it in this transaction, which it consumes (SQLSTATE 42501); so rows skip the row trigger only on the set-wise batch path.';
