-- Raw usage events of one user in [from_at, to_at), oldest first, for CSV export (COPY (select ...) TO STDOUT).
-- Called by the Python client's export_events_csv() and `pgtally export`; only the retained log can be exported.
create or replace function tally.export_events(user_id text, from_at timestamptz, to_at timestamptz)
returns table (
  event_id          text,
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
  corrects_event_id text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if from_at is null or to_at is null or to_at < from_at then
    raise exception using errcode = 'PT011', column = 'to_at',
      message = format('need from_at <= to_at (got %s .. %s)', coalesce(from_at::text, 'null'), coalesce(to_at::text, 'null'));
  end if;
  -- Only the owner (and superusers) may read the log itself; a reader reads it
  -- through tally.my_usage_events, which holds the rows of tally.user_id only.
  -- Two queries, not one: PostgreSQL checks the privileges on every table a query
  -- names, even in a part that returns nothing; PL/pgSQL runs only the branch taken.
  if pg_catalog.has_table_privilege('tally.usage_events', 'select') then
    return query
    select e.event_id, e.kind, e.occurred_at, e.recorded_at, e.quantity, e.duration_ms, e.cost, e.status, e.error_code,
           e.billable, e.attributes, e.corrects_event_id
      from tally.usage_events e
     where e.user_id = export_events.user_id and e.occurred_at >= from_at and e.occurred_at < to_at
     order by e.occurred_at, e.event_id;
  else
    return query
    select e.event_id, e.kind, e.occurred_at, e.recorded_at, e.quantity, e.duration_ms, e.cost, e.status, e.error_code,
           e.billable, e.attributes, e.corrects_event_id
      from tally.my_usage_events e
     where e.user_id = export_events.user_id and e.occurred_at >= from_at and e.occurred_at < to_at
     order by e.occurred_at, e.event_id;
  end if;
end
$$;

comment on function tally.export_events(text, timestamptz, timestamptz) is
  'Raw events of a user with occurred_at in [from_at, to_at), oldest first (then by event_id); the retained log only. Stream it with COPY (select ... from tally.export_events(...)) TO STDOUT WITH (FORMAT csv, HEADER), text columns through tally._csv_safe for a file that may be opened in a spreadsheet.';
