-- Amends a recorded event by signed deltas, booked in the original's buckets (same user, kind, attributes, time).
-- Called by producers that re-measure usage (e.g. a provider's final character count).
create or replace function tally.amend_usage(
  user_id           text,
  original_event_id text,
  event_id          text,
  quantity_delta    bigint  default 0,
  duration_ms_delta bigint  default null,
  cost_delta        numeric default 0
)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  orig tally.usage_events := tally._original_event(amend_usage.user_id, original_event_id);
begin
  return tally.record_usage(
    event_id => amend_usage.event_id, user_id => orig.user_id, kind => orig.kind,
    quantity => quantity_delta, occurred_at => orig.occurred_at, duration_ms => duration_ms_delta,
    cost => cost_delta, status => 'succeeded', billable => orig.billable, attributes => orig.attributes,
    corrects_event_id => original_event_id);
end
$$;

comment on function tally.amend_usage(text, text, text, bigint, bigint, numeric) is
  'Records an amendment of a user''s event by signed deltas (quantity, duration_ms, cost) booked in the original''s buckets; the event count is unchanged.';
