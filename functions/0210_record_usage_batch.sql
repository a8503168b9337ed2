-- Records many events set-wise (the fast batch path, used by the client's record_many);
-- same validation, deduplication and aggregation as the row trigger. Returns how many were new.
create or replace function tally.record_usage_batch(
  event_ids          text[],
  user_ids           text[],
  kinds              text[],
  quantities         bigint[],
  occurred_ats       timestamptz[],
  durations_ms       bigint[],
  costs              numeric[],
  statuses           text[],
  error_codes        text[],
  billables          boolean[],
  attributes_list    jsonb[],
  corrects_event_ids text[]
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  n     integer := cardinality(event_ids);
  bad   record;
  added integer;
  twice_reversed text;
begin
  if n is null or n = 0 then
    return 0;
  end if;
  if cardinality(user_ids) <> n or cardinality(kinds) <> n or cardinality(quantities) <> n
     or cardinality(occurred_ats) <> n or cardinality(durations_ms) <> n or cardinality(costs) <> n
     or cardinality(statuses) <> n or cardinality(error_codes) <> n or cardinality(billables) <> n
     or cardinality(attributes_list) <> n or cardinality(corrects_event_ids) <> n then
    raise exception using errcode = 'PT011', message = 'record_usage_batch: every array must have the same length';
  end if;

  -- The same rules as the row trigger, checked for the whole batch before anything is written.
  with input as (
    select u.ord, u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0) as quantity, coalesce(u.occurred_at, now()) as occurred_at,
           u.duration_ms, coalesce(u.cost, 0) as cost, coalesce(u.status, 'succeeded') as status, u.error_code,
           coalesce(u.attributes, '{}') as attributes, u.corrects_event_id
      from unnest(event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
                  error_codes, attributes_list, corrects_event_ids)
           with ordinality as u(event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status,
                                error_code, attributes, corrects_event_id, ord)
  ), checked as (
    select b.*,
           coalesce(k.user_id, o.user_id) as original_user,
           coalesce(k.correctable, o.status = 'succeeded' and o.corrects_event_id is null) as original_correctable
      from input b
      left join tally.event_keys k on k.event_id = b.corrects_event_id
      -- an original may also come in the same batch, before or after its correction
      left join lateral (select o.user_id, o.status, o.corrects_event_id from input o
                          where k.event_id is null and o.event_id = b.corrects_event_id order by o.ord limit 1) o on true
  )
  select b.ord, b.event_id,
         case
           when b.event_id is null or b.event_id = '' then 'PT001:event_id:event_id is required'
           when b.user_id is null or b.user_id = '' then 'PT001:user_id:user_id is required'
           when b.kind is null or b.kind = '' then 'PT001:kind:kind is required'
           when length(b.event_id) > 200 then 'PT007:event_id:event_id takes at most 200 characters'
           when length(b.user_id) > 200 then 'PT007:user_id:user_id takes at most 200 characters'
           when length(b.kind) > 64 then 'PT007:kind:kind takes at most 64 characters'
           when length(b.error_code) > 200 then 'PT007:error_code:error_code takes at most 200 characters'
           when length(b.corrects_event_id) > 200 then 'PT007:corrects_event_id:corrects_event_id takes at most 200 characters'
           when b.status not in ('succeeded', 'failed', 'cancelled', 'reversed')
             then format('PT003:status:status %L is unknown: use succeeded, failed, cancelled, or reversed on a correction', b.status)
           when b.status = 'reversed' and b.corrects_event_id is null
             then 'PT003:status:status reversed is only valid on a correction (corrects_event_id set)'
           when b.corrects_event_id is null and b.quantity < 0 then format('PT002:quantity:quantity must not be negative outside a correction (got %s)', b.quantity)
           when b.corrects_event_id is null and b.duration_ms < 0 then format('PT002:duration_ms:duration_ms must not be negative outside a correction (got %s)', b.duration_ms)
           when b.corrects_event_id is null and b.cost < 0 then format('PT002:cost:cost must not be negative outside a correction (got %s)', b.cost)
           when not (b.cost > -1e15 and b.cost < 1e15) then format('PT002:cost:cost must be a finite number below 1e15 in magnitude (got %s)', b.cost)
           when b.occurred_at < '2000-01-01 00:00:00+00' or b.occurred_at > statement_timestamp() + interval '1 day'
             then format('PT004:occurred_at:occurred_at %s is out of range: it must lie between 2000-01-01 and one day from now', b.occurred_at)
           when jsonb_typeof(b.attributes) <> 'object'
             then format('PT005:attributes:attributes must be a JSON object (got %s)', jsonb_typeof(b.attributes))
           when octet_length(b.attributes::text) > 16384
             then format('PT006:attributes:attributes take %s bytes as JSON text; at most 16384 are allowed', octet_length(b.attributes::text))
           when b.corrects_event_id is not null and (b.original_user is null or b.corrects_event_id = b.event_id)
             then format('PT008:corrects_event_id:corrects_event_id %L names no recorded event', b.corrects_event_id)
           when b.corrects_event_id is not null and b.original_user <> b.user_id
             then format('PT008:corrects_event_id:corrects_event_id %L belongs to another user', b.corrects_event_id)
           when b.corrects_event_id is not null and not b.original_correctable
             then format('PT008:corrects_event_id:corrects_event_id %L is not a succeeded original event; only those can be corrected', b.corrects_event_id)
         end as problem
    into bad
    from checked b
   where b.event_id is null or b.event_id = '' or b.user_id is null or b.user_id = '' or b.kind is null or b.kind = ''
      or length(b.event_id) > 200 or length(b.user_id) > 200 or length(b.kind) > 64
      or length(b.error_code) > 200 or length(b.corrects_event_id) > 200
      or b.status not in ('succeeded', 'failed', 'cancelled', 'reversed')
      or (b.status = 'reversed' and b.corrects_event_id is null)
      or (b.corrects_event_id is null and (b.quantity < 0 or b.duration_ms < 0 or b.cost < 0))
      or not (b.cost > -1e15 and b.cost < 1e15)
      or b.occurred_at < '2000-01-01 00:00:00+00' or b.occurred_at > statement_timestamp() + interval '1 day'
      or jsonb_typeof(b.attributes) <> 'object'
      or ((pg_column_size(b.attributes) > 1024 or pg_column_compression(b.attributes) is not null)
          and octet_length(b.attributes::text) > 16384)
      or (b.corrects_event_id is not null
          and (b.original_user is null or b.corrects_event_id = b.event_id or b.original_user <> b.user_id
               or not b.original_correctable))
   order by b.ord
   limit 1;
  if found then
    raise exception using errcode = split_part(bad.problem, ':', 1), column = split_part(bad.problem, ':', 2),
      message = substr(bad.problem, length(split_part(bad.problem, ':', 1)) + length(split_part(bad.problem, ':', 2)) + 3),
      detail = format('batch row %s (event_id %L)', bad.ord, bad.event_id);
  end if;

  -- Exactly-once, in event_id order so two overlapping batches cannot deadlock;
  -- a key repeated inside the batch counts once (its first occurrence wins).
  -- recorded_at is set here, so the row trigger (WHEN recorded_at IS NULL) stays quiet.
  with firsts as (
    select distinct on (u.event_id)
           u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0) as quantity, coalesce(u.occurred_at, now()) as occurred_at,
           u.duration_ms, coalesce(u.cost, 0) as cost, coalesce(u.status, 'succeeded') as status, u.error_code,
           coalesce(u.billable, true) as billable, coalesce(u.attributes, '{}') as attributes, u.corrects_event_id
      from unnest(event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
                  error_codes, billables, attributes_list, corrects_event_ids)
           with ordinality as u(event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status,
                                error_code, billable, attributes, corrects_event_id, ord)
     order by u.event_id, u.ord
  ), fresh as (
    insert into tally.event_keys (event_id, user_id, occurred_at, correctable)
    select f.event_id, f.user_id, f.occurred_at, f.status = 'succeeded' and f.corrects_event_id is null
      from firsts f order by f.event_id
    on conflict do nothing
    returning event_id
  ), new_events as (
    select f.* from firsts f join fresh using (event_id)
  ), logged as (
    insert into tally.usage_events
      (event_id, user_id, kind, occurred_at, recorded_at, quantity, duration_ms, cost, status, error_code,
       billable, attributes, corrects_event_id)
    select b.event_id, b.user_id, b.kind, b.occurred_at, statement_timestamp(), b.quantity, b.duration_ms, b.cost,
           b.status, b.error_code, b.billable, b.attributes, b.corrects_event_id
      from new_events b
    returning 1
  ), deltas as (
    insert into tally.pending_deltas
      (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms,
       timed_events, cost, billable, is_use)
    select b.user_id, b.kind, b.occurred_at, b.attributes,
           case when b.status = 'reversed' then -1 when b.status <> 'succeeded' or b.corrects_event_id is not null then 0 else 1 end,
           case when b.status = 'failed' then 1 else 0 end,
           case when b.status in ('succeeded', 'reversed') then b.quantity else 0 end,
           case when b.status in ('succeeded', 'reversed') then coalesce(b.duration_ms, 0) else 0 end,
           case when b.duration_ms is null or b.status not in ('succeeded', 'reversed') then 0
                when b.status = 'reversed' then -1 when b.corrects_event_id is not null then 0 else 1 end,
           case when b.status in ('succeeded', 'reversed') then b.cost else 0 end,
           b.billable and b.status in ('succeeded', 'reversed'),
           b.status = 'succeeded' and b.corrects_event_id is null
      from new_events b
  ), reversed as (
    -- One reversal per original (tally.reversals); a concurrent one waits, then conflicts.
    insert into tally.reversals (original_event_id, event_id)
    select b.corrects_event_id, b.event_id from new_events b where b.status = 'reversed'
     order by b.corrects_event_id
    on conflict do nothing
    returning event_id
  )
  select (select count(*) from logged),
         (select b.corrects_event_id from new_events b
           where b.status = 'reversed' and b.event_id not in (select r.event_id from reversed r) limit 1)
    into added, twice_reversed;
  if twice_reversed is not null then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is already reversed', twice_reversed);
  end if;

  return added;
end
$$;

comment on function tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]) is
  'Records a batch of usage events given as parallel arrays, set-wise: all-or-nothing validation, exactly-once by event_id. Returns the number of new events.';
