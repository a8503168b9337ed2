-- Reverses a recorded event of a user: a new row with the original's user, kind, attributes and time and negated
-- amounts, so every aggregate bucket of the original drops it at once. Called by producers and the client.
create or replace function tally.reverse_usage(user_id text, original_event_id text, event_id text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  orig tally.usage_events := tally._original_event(reverse_usage.user_id, original_event_id);
  new_row boolean;
begin
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

comment on function tally.reverse_usage(text, text, text) is
  'Records a reversal (event_id, a key of the same user) (status reversed, negated amounts, same user, kind, attributes and occurred_at) of a succeeded event; true when new, false when event_id was already recorded.';
