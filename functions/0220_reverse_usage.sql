-- Reverses a recorded event: a new row with the original's user, kind, attributes and time and negated
-- amounts, so every aggregate bucket of the original drops it at once. Called by producers and the client.
create or replace function tally.reverse_usage(original_event_id text, event_id text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  key  record;
  orig record;
  new_row boolean;
begin
  select k.user_id, k.occurred_at into key from tally.event_keys k where k.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names no recorded event', original_event_id);
  end if;
  select e.* into orig from tally.usage_events e
   where e.user_id = key.user_id and e.occurred_at = key.occurred_at and e.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is no longer in the retained log; record the correction with explicit amounts', original_event_id);
  end if;
  -- The row trigger checks the original is a succeeded original of this user and
  -- not reversed yet (tally.reversals), race-free.
  new_row := tally.record_usage(
    event_id => reverse_usage.event_id, user_id => orig.user_id, kind => orig.kind,
    quantity => -orig.quantity, occurred_at => orig.occurred_at, duration_ms => -orig.duration_ms,
    cost => -orig.cost, status => 'reversed', billable => orig.billable, attributes => orig.attributes,
    corrects_event_id => original_event_id);
  return new_row;
end
$$;

comment on function tally.reverse_usage(text, text) is
  'Records a reversal (status reversed, negated amounts, same user, kind, attributes and occurred_at) of a succeeded event; true when new, false when event_id was already recorded.';
