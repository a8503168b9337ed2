-- Records one usage event with validation; true when it was new, false for a duplicate (user_id, event_id).
-- Called by producers (any language) and by the Python client's record().
create or replace function tally.record_usage(
  event_id          text,
  user_id           text,
  kind              text,
  quantity          bigint      default 0,
  occurred_at       timestamptz default now(),
  duration_ms       bigint      default null,
  cost              numeric     default 0,
  status            text        default 'succeeded',
  error_code        text        default null,
  billable          boolean     default true,
  attributes        jsonb       default '{}',
  corrects_event_id text        default null
)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  added integer;
begin
  -- The row trigger validates and deduplicates; a skipped duplicate inserts no row. SECURITY
  -- DEFINER, so that on Citus the insert writes the user's shard as the owner, like check_quota
  -- and the batch paths in the same transaction (Citus refuses a transaction that modifies one
  -- placement as two roles). RETURNING counts the row: Citus's row count also counts a row the
  -- trigger skipped.
  insert into tally.usage_events
    (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
     attributes, corrects_event_id)
  values
    (record_usage.event_id, record_usage.user_id, record_usage.kind, record_usage.occurred_at,
     record_usage.quantity, record_usage.duration_ms, record_usage.cost, record_usage.status,
     record_usage.error_code, record_usage.billable, record_usage.attributes, record_usage.corrects_event_id)
  returning 1 into added;
  return added is not null;
end
$$;

comment on function tally.record_usage(text, text, text, bigint, timestamptz, bigint, numeric, text, text, boolean, jsonb, text) is
  'Records one usage event (validated, exactly-once by (user_id, event_id)). Returns true when new, false when the event_id was already recorded.';
