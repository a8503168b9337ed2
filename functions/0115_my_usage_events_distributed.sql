-- The raw events of the user named by tally.user_id, read as the owner: what tally.my_usage_events
-- reads on a Citus install (pgtally distribute points the view here and grants it to tally_reader).
create or replace function tally._my_usage_events_distributed()
returns table (
  event_id          text,
  user_id           text,
  kind              text,
  occurred_at       timestamptz,
  recorded_at       timestamptz,
  quantity          bigint,
  duration_ms       bigint,
  cost              numeric,
  status            text,
  error_code        text,
  billable          boolean,
  attributes        jsonb,
  corrects_event_id text,
  plan              text
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Read once, on the coordinator: the shard query gets the user as a parameter.
  uid text := tally.current_user_id();
begin
  if uid is null then
    return;
  end if;
  -- Citus runs a shard query as the current user, and readers hold no privilege on the log's
  -- shards: this query runs as the owner and is routed to the user's shard alone.
  return query
    select e.event_id, e.user_id, e.kind, e.occurred_at, e.recorded_at, e.quantity, e.duration_ms, e.cost, e.status,
           e.error_code, e.billable, e.attributes, e.corrects_event_id, e.plan
      from tally.usage_events e
     where e.user_id = uid;
end
$$;

comment on function tally._my_usage_events_distributed() is
  'The raw usage events of the user named by tally.user_id (none when unset), read as the owner: the body of tally.my_usage_events on a Citus install, where a reader may not read the log''s shards (internal).';
