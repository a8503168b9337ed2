-- Row trigger on tally.usage_events: validates, deduplicates by event_id and appends the pending delta.
-- Fires for every INSERT/COPY that does not come through tally.record_usage_batch (which does the same set-wise).
create or replace function tally._trg_usage_events_before_insert_record()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  is_correction boolean := new.corrects_event_id is not null;
  original      record;
  succeeded     boolean;
begin
  -- Fast path: one expression accepts a valid row; the detailed checks below only
  -- run to explain a rejection (the message names the field, the SQLSTATE the rule).
  if not coalesce(
       new.event_id <> '' and new.user_id <> '' and new.kind <> ''
       and length(new.event_id) <= 200 and length(new.user_id) <= 200 and length(new.kind) <= 64
       and (new.error_code is null or length(new.error_code) <= 200)
       and (new.status = 'succeeded' or new.status = 'failed' or new.status = 'cancelled'
            or (new.status = 'reversed' and is_correction))
       and new.quantity is not null and new.cost > -1e15 and new.cost < 1e15
       and (is_correction or (new.quantity >= 0 and new.cost >= 0 and (new.duration_ms is null or new.duration_ms >= 0)))
       and new.occurred_at >= '2000-01-01 00:00:00+00' and new.occurred_at <= statement_timestamp() + interval '1 day'
       and jsonb_typeof(new.attributes) = 'object'
       and ((pg_column_size(new.attributes) <= 1024 and pg_column_compression(new.attributes) is null)
            or octet_length(new.attributes::text) <= 16384)
       and (not is_correction or length(new.corrects_event_id) <= 200),
       false) then
  if new.event_id is null or new.event_id = '' then
    raise exception using errcode = 'PT001', column = 'event_id', message = 'event_id is required';
  elsif new.user_id is null or new.user_id = '' then
    raise exception using errcode = 'PT001', column = 'user_id', message = 'user_id is required';
  elsif new.kind is null or new.kind = '' then
    raise exception using errcode = 'PT001', column = 'kind', message = 'kind is required';
  elsif length(new.event_id) > 200 or length(new.user_id) > 200 or length(new.kind) > 64
        or length(new.error_code) > 200 or length(new.corrects_event_id) > 200 then
    raise exception using errcode = 'PT007',
      column = case when length(new.event_id) > 200 then 'event_id' when length(new.user_id) > 200 then 'user_id'
                    when length(new.kind) > 64 then 'kind' when length(new.error_code) > 200 then 'error_code'
                    else 'corrects_event_id' end,
      message = 'text field too long: event_id, user_id, error_code and corrects_event_id take at most 200 characters, kind at most 64';
  elsif new.status is null or new.status not in ('succeeded', 'failed', 'cancelled', 'reversed') then
    raise exception using errcode = 'PT003', column = 'status',
      message = format('status %L is unknown: use succeeded, failed, cancelled, or reversed on a correction', new.status);
  elsif new.status = 'reversed' and not is_correction then
    raise exception using errcode = 'PT003', column = 'status',
      message = 'status reversed is only valid on a correction (corrects_event_id set)';
  elsif not is_correction and (new.quantity < 0 or new.duration_ms < 0 or new.cost < 0) then
    raise exception using errcode = 'PT002',
      column = case when new.quantity < 0 then 'quantity' when new.duration_ms < 0 then 'duration_ms' else 'cost' end,
      message = format('%s must not be negative outside a correction (got %s)',
        case when new.quantity < 0 then 'quantity' when new.duration_ms < 0 then 'duration_ms' else 'cost' end,
        case when new.quantity < 0 then new.quantity::text when new.duration_ms < 0 then new.duration_ms::text else new.cost::text end);
  elsif new.quantity is null or new.cost is null or not (new.cost > -1e15 and new.cost < 1e15) then
    raise exception using errcode = 'PT002', column = case when new.quantity is null then 'quantity' else 'cost' end,
      message = format('%s must be a finite number below 1e15 in magnitude (got %s)',
                       case when new.quantity is null then 'quantity' else 'cost' end,
                       coalesce(new.cost::text, 'null'));
  elsif new.occurred_at is null or new.occurred_at < '2000-01-01 00:00:00+00'
        or new.occurred_at > statement_timestamp() + interval '1 day' then
    raise exception using errcode = 'PT004', column = 'occurred_at',
      message = format('occurred_at %s is out of range: it must lie between 2000-01-01 and one day from now', new.occurred_at);
  elsif new.attributes is null or jsonb_typeof(new.attributes) <> 'object' then
    raise exception using errcode = 'PT005', column = 'attributes',
      message = format('attributes must be a JSON object (got %s)', coalesce(jsonb_typeof(new.attributes), 'null'));
  elsif octet_length(new.attributes::text) > 16384 then
    raise exception using errcode = 'PT006', column = 'attributes',
      message = format('attributes take %s bytes as JSON text; at most 16384 are allowed', octet_length(new.attributes::text));
  elsif is_correction and length(new.corrects_event_id) > 200 then
    raise exception using errcode = 'PT007', column = 'corrects_event_id',
      message = 'corrects_event_id takes at most 200 characters';
  else
    raise exception using errcode = 'PT000', message = 'usage event rejected by validation (no rule named it: a pgtally bug)';
  end if;
  end if;

  if is_correction then
    select k.user_id, k.correctable into original from tally.event_keys k where k.event_id = new.corrects_event_id;
    if not found or new.corrects_event_id = new.event_id then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L names no recorded event', new.corrects_event_id);
    elsif original.user_id <> new.user_id then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L belongs to another user', new.corrects_event_id);
    elsif not original.correctable then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L is not a succeeded original event; only those can be corrected', new.corrects_event_id);
    end if;
  end if;

  new.recorded_at := statement_timestamp();

  -- Exactly-once: the first committed insert of a key wins; a concurrent retry waits
  -- for it and then skips silently, so the producer's transaction goes on.
  insert into tally.event_keys (event_id, user_id, occurred_at, correctable)
  values (new.event_id, new.user_id, new.occurred_at, new.status = 'succeeded' and not is_correction)
  on conflict do nothing;
  if not found then
    return null;
  end if;

  if new.status = 'reversed' then
    -- A concurrent reversal of the same original waits here, then fails.
    insert into tally.reversals (original_event_id, event_id) values (new.corrects_event_id, new.event_id)
    on conflict do nothing;
    if not found then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('event %L is already reversed', new.corrects_event_id);
    end if;
  end if;

  succeeded := new.status = 'succeeded';
  insert into tally.pending_deltas
    (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms,
     timed_events, cost, billable, is_use)
  values
    (new.user_id, new.kind, new.occurred_at, new.attributes,
     case when not succeeded then (case when new.status = 'reversed' then -1 else 0 end)
          when is_correction then 0 else 1 end,
     case when new.status = 'failed' then 1 else 0 end,
     case when succeeded or new.status = 'reversed' then new.quantity else 0 end,
     case when succeeded or new.status = 'reversed' then coalesce(new.duration_ms, 0) else 0 end,
     case when new.duration_ms is null or not (succeeded or new.status = 'reversed') then 0
          when new.status = 'reversed' then -1 when is_correction then 0 else 1 end,
     case when succeeded or new.status = 'reversed' then new.cost else 0 end,
     new.billable and (succeeded or new.status = 'reversed'),
     succeeded and not is_correction);
  return new;
end
$$;

comment on function tally._trg_usage_events_before_insert_record() is
  'Validates a new usage event (SQLSTATE class PT), skips a duplicate event_id silently and appends its signed contribution to tally.pending_deltas.';
