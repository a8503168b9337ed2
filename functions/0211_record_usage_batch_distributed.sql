-- The batch path of tally.record_usage_batch on a Citus install: validates the whole batch, then
-- inserts its rows through the log's row trigger on each user's shard. Called by tally.record_usage_batch only.
create or replace function tally._record_usage_batch_distributed(
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
set search_path = pg_catalog, pg_temp
as $$
declare
  bad_ord     bigint;
  bad_event   text;
  bad_problem text[];
  r           record;
  correctable boolean;
  added       integer;
  more        integer;
  -- corrections validated against an original of this batch only, and the originals this batch recorded
  batch_users     text[] := '{}'::text[];
  batch_originals text[] := '{}'::text[];
  rec_users       text[];
  rec_events      text[];
  lost            text;
begin
  -- The rules of one row, for the whole batch (on the coordinator: no table is read).
  select p.ord, p.event_id, p.problem
    into bad_ord, bad_event, bad_problem
    from (select u.ord, u.event_id,
                 tally._event_problem(u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0),
                                      coalesce(u.occurred_at, now()), u.duration_ms, coalesce(u.cost, 0),
                                      coalesce(u.status, 'succeeded'), u.error_code, coalesce(u.attributes, '{}'),
                                      u.corrects_event_id) as problem
            from unnest(event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
                        error_codes, attributes_list, corrects_event_ids)
                 with ordinality as u(event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status,
                                      error_code, attributes, corrects_event_id, ord)) as p
   where p.problem is not null
   order by p.ord
   limit 1;

  -- Corrections before the first bad row: the original is a recorded event of the same user
  -- (one query routed to that user's shard each) or, failing that, an event of this batch.
  for r in
    with input as (
      select u.ord, u.event_id, u.user_id, coalesce(u.status, 'succeeded') as status, u.corrects_event_id
        from unnest(event_ids, user_ids, statuses, corrects_event_ids)
             with ordinality as u(event_id, user_id, status, corrects_event_id, ord)
    ), firsts as (
      select distinct on (i.user_id, i.event_id) i.user_id, i.event_id, i.status, i.corrects_event_id
        from input i order by i.user_id, i.event_id, i.ord
    )
    select b.ord, b.event_id, b.user_id, b.corrects_event_id, o.event_id is not null as in_batch,
           coalesce(o.status = 'succeeded' and o.corrects_event_id is null, false) as batch_correctable
      from input b
      left join firsts o on o.user_id = b.user_id and o.event_id = b.corrects_event_id
     where b.corrects_event_id is not null and (bad_ord is null or b.ord < bad_ord)
     order by b.ord
  loop
    select k.correctable into correctable from tally.event_keys k
     where k.user_id = r.user_id and k.event_id = r.corrects_event_id;
    if not found then
      correctable := case when r.in_batch then r.batch_correctable end;
      if r.in_batch then
        batch_users := batch_users || r.user_id;
        batch_originals := batch_originals || r.corrects_event_id;
      end if;
    end if;
    if correctable is null or r.corrects_event_id = r.event_id then
      bad_problem := array['PT008', 'corrects_event_id',
                           format('corrects_event_id %L names no recorded event of user %L', r.corrects_event_id, r.user_id)];
    elsif not correctable then
      bad_problem := array['PT008', 'corrects_event_id',
                           format('corrects_event_id %L is not a succeeded original event; only those can be corrected', r.corrects_event_id)];
    else
      continue;
    end if;
    bad_ord := r.ord;
    bad_event := r.event_id;
    exit;
  end loop;
  if bad_problem is not null then
    raise exception using errcode = bad_problem[1], column = bad_problem[2], message = bad_problem[3],
      detail = format('batch row %s (event_id %L)', bad_ord, bad_event);
  end if;

  -- The first occurrence of each (user_id, event_id) goes to the row trigger, which records the
  -- plan, skips a key recorded already and appends the pending delta; originals go first so a
  -- correction of this batch finds its original. RETURNING counts only the rows not skipped.
  with firsts as (
    select distinct on (u.user_id, u.event_id)
           u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0) as quantity, coalesce(u.occurred_at, now()) as occurred_at,
           u.duration_ms, coalesce(u.cost, 0) as cost, coalesce(u.status, 'succeeded') as status, u.error_code,
           coalesce(u.billable, true) as billable, coalesce(u.attributes, '{}') as attributes, u.corrects_event_id
      from unnest(event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
                  error_codes, billables, attributes_list, corrects_event_ids)
           with ordinality as u(event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status,
                                error_code, billable, attributes, corrects_event_id, ord)
     order by u.user_id, u.event_id, u.ord
  ), logged as (
    insert into tally.usage_events
      (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable, attributes,
       corrects_event_id)
    select f.event_id, f.user_id, f.kind, f.occurred_at, f.quantity, f.duration_ms, f.cost, f.status, f.error_code,
           f.billable, f.attributes, f.corrects_event_id
      from firsts f where f.corrects_event_id is null order by f.user_id, f.event_id
    returning user_id, event_id
  )
  select count(*), coalesce(array_agg(l.user_id), '{}'), coalesce(array_agg(l.event_id), '{}')
    into added, rec_users, rec_events
    from logged l;

  -- As on one server: a correction validated against an original of this batch stands only if
  -- that original was recorded here (another transaction may have recorded the same key first).
  select o.e into lost
    from unnest(batch_users, batch_originals) as o(u, e)
   where not exists (select from unnest(rec_users, rec_events) as x(u, e) where x.u = o.u and x.e = o.e)
   limit 1;
  if lost is not null then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names an event of this batch that another transaction recorded first; send the batch again',
                       lost);
  end if;

  with firsts as (
    select distinct on (u.user_id, u.event_id)
           u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0) as quantity, coalesce(u.occurred_at, now()) as occurred_at,
           u.duration_ms, coalesce(u.cost, 0) as cost, coalesce(u.status, 'succeeded') as status, u.error_code,
           coalesce(u.billable, true) as billable, coalesce(u.attributes, '{}') as attributes, u.corrects_event_id
      from unnest(event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
                  error_codes, billables, attributes_list, corrects_event_ids)
           with ordinality as u(event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status,
                                error_code, billable, attributes, corrects_event_id, ord)
     order by u.user_id, u.event_id, u.ord
  ), logged as (
    insert into tally.usage_events
      (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable, attributes,
       corrects_event_id)
    select f.event_id, f.user_id, f.kind, f.occurred_at, f.quantity, f.duration_ms, f.cost, f.status, f.error_code,
           f.billable, f.attributes, f.corrects_event_id
      from firsts f where f.corrects_event_id is not null order by f.user_id, f.event_id
    returning 1
  )
  select count(*) into more from logged;

  return added + more;
end
$$;

comment on function tally._record_usage_batch_distributed(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]) is
  'The Citus path of tally.record_usage_batch: all-or-nothing validation of the batch, then its first occurrence of each (user_id, event_id) inserted through the log''s row trigger, originals before corrections; returns the number of new events (internal).';
