-- The retained log row of a user's event, found through its exactly-once key; PT008 when unknown or dropped.
-- Called by tally.reverse_usage and tally.amend_usage, which book corrections in the original's buckets.
create or replace function tally._original_event(user_id text, original_event_id text)
returns tally.usage_events
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  key  record;
  orig tally.usage_events;
begin
  select k.user_id, k.occurred_at into key from tally.event_keys k
   where k.user_id = _original_event.user_id and k.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names no recorded event of user %L', original_event_id, _original_event.user_id);
  end if;
  -- The key's user and time lead the log index straight to the row (and prune partitions).
  select e.* into orig from tally.usage_events e
   where e.user_id = key.user_id and e.occurred_at = key.occurred_at and e.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is no longer in the retained log; record the correction with explicit amounts',
                       original_event_id);
  end if;
  return orig;
end
$$;

comment on function tally._original_event(text, text) is
  'The retained log row of a user''s event (located through tally.event_keys); raises PT008 when the id is unknown or its partition was dropped (internal).';
