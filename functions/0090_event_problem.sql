-- What is wrong with a usage event, as {sqlstate, field, message}, or NULL when it is valid.
-- Called by the insert trigger (to explain a row its fast check refused) and by the batch path.
--
-- Not pinned to a search_path so the batch path can inline it; it uses only its
-- arguments and built-in functions, spelled without schema-dependent names.
create or replace function tally._event_problem(
  event_id text, user_id text, kind text, quantity bigint, occurred_at timestamptz, duration_ms bigint,
  cost numeric, status text, error_code text, attributes jsonb, corrects_event_id text
)
returns text[]
language sql
stable
parallel safe
as $$
  select case
    when event_id is null or event_id = '' then array['PT001', 'event_id', 'event_id is required']
    when user_id is null or user_id = '' then array['PT001', 'user_id', 'user_id is required']
    when kind is null or kind = '' then array['PT001', 'kind', 'kind is required']
    when length(event_id) > 200 then array['PT007', 'event_id', 'event_id takes at most 200 characters']
    when length(user_id) > 200 then array['PT007', 'user_id', 'user_id takes at most 200 characters']
    when length(kind) > 64 then array['PT007', 'kind', 'kind takes at most 64 characters']
    when length(error_code) > 200 then array['PT007', 'error_code', 'error_code takes at most 200 characters']
    when length(corrects_event_id) > 200
      then array['PT007', 'corrects_event_id', 'corrects_event_id takes at most 200 characters']
    when status is null or status not in ('succeeded', 'failed', 'cancelled', 'reversed')
      then array['PT003', 'status', format('status %L is unknown: use succeeded, failed, cancelled, or reversed on a correction', status)]
    when status = 'reversed' and corrects_event_id is null
      then array['PT003', 'status', 'status reversed is only valid on a correction (corrects_event_id set)']
    when quantity is null then array['PT002', 'quantity', 'quantity must be a number (got null)']
    when cost is null or not (cost > -1e15 and cost < 1e15)
      then array['PT002', 'cost', format('cost must be a finite number below 1e15 in magnitude (got %s)', coalesce(cost::text, 'null'))]
    when scale(cost) > 20
      then array['PT002', 'cost', format('cost takes at most 20 digits after the decimal point (got %s)', scale(cost))]
    when corrects_event_id is null and quantity < 0
      then array['PT002', 'quantity', format('quantity must not be negative outside a correction (got %s)', quantity)]
    when corrects_event_id is null and duration_ms < 0
      then array['PT002', 'duration_ms', format('duration_ms must not be negative outside a correction (got %s)', duration_ms)]
    when corrects_event_id is null and cost < 0
      then array['PT002', 'cost', format('cost must not be negative outside a correction (got %s)', cost)]
    -- Bounds that keep every sum and every time computed from accepted events in range
    -- (sums are numeric; occurred_at + duration_ms stays a valid timestamp and interval).
    when quantity > 1000000000000000 or quantity < -1000000000000000
      then array['PT002', 'quantity', format('quantity must be at most 1e15 (1000000000000000) in magnitude (got %s)', quantity)]
    when duration_ms > 1000000000000 or duration_ms < -1000000000000
      then array['PT002', 'duration_ms', format('duration_ms must be at most 1e12 (1000000000000 ms, about 31.7 years) in magnitude (got %s)', duration_ms)]
    when occurred_at is null or occurred_at < '2000-01-01 00:00:00+00' or occurred_at > statement_timestamp() + interval '1 day'
      then array['PT004', 'occurred_at', format('occurred_at %s is out of range: it must lie between 2000-01-01 and one day from now', coalesce(occurred_at::text, 'null'))]
    when attributes is null or jsonb_typeof(attributes) <> 'object'
      then array['PT005', 'attributes', format('attributes must be a JSON object (got %s)', coalesce(jsonb_typeof(attributes), 'null'))]
    when (pg_column_size(attributes) > 1024 or pg_column_compression(attributes) is not null)
         and octet_length(attributes::text) > 16384
      then array['PT006', 'attributes', format('attributes take %s bytes as JSON text; at most 16384 are allowed', octet_length(attributes::text))]
  end
$$;

comment on function tally._event_problem(text, text, text, bigint, timestamptz, bigint, numeric, text, text, jsonb, text) is
  'Validation rules of a usage event: NULL when valid, else {SQLSTATE, field, message} of the first broken rule (internal).';
