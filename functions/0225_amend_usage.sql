-- Amends a recorded event by signed deltas, booked in the original's buckets (same user, kind, attributes, time).
-- Called by producers that re-measure usage (e.g. a provider's final character count).
create or replace function tally.amend_usage(
  original_event_id text,
  event_id          text,
  quantity_delta    bigint  default 0,
  duration_ms_delta bigint  default null,
  cost_delta        numeric default 0
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  key  record;
  orig record;
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
  return tally.record_usage(
    event_id => amend_usage.event_id, user_id => orig.user_id, kind => orig.kind,
    quantity => quantity_delta, occurred_at => orig.occurred_at, duration_ms => duration_ms_delta,
    cost => cost_delta, status => 'succeeded', billable => orig.billable, attributes => orig.attributes,
    corrects_event_id => original_event_id);
end
$$;

comment on function tally.amend_usage(text, text, bigint, bigint, numeric) is
  'Records an amendment of an event by signed deltas (quantity, duration_ms, cost) booked in the original''s buckets; the event count is unchanged.';
