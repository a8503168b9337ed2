-- The set-wise batch path: validates, deduplicates and records the rows of a batch, given either as
-- parallel arrays (tally.record_usage_batch) or in the session's staging table (tally._record_staged).
-- Internal: only the owner executes it, through those two SECURITY DEFINER entry points.
create or replace function tally._record_rows(
  from_staging       boolean,
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
  -- Every statement below reads the batch as "u" from one of these two sources. The staging
  -- table is read only after tally._record_staged checked that tally.begin_staging made it.
  source text := case when from_staging
    then $s$(select s.event_id, s.user_id, s.kind, s.quantity, s.occurred_at, s.duration_ms, s.cost, s.status,
                    s.error_code, s.billable, s.attributes, s.corrects_event_id, row_number() over () as ord
               from pg_temp.tally_staging s) as u$s$
    else $s$unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             with ordinality as u(event_id, user_id, kind, quantity, occurred_at, duration_ms, cost, status,
                                  error_code, billable, attributes, corrects_event_id, ord)$s$
  end;
  bad_ord     bigint;
  bad_event   text;
  bad_problem text[];
  added integer;
  twice_reversed text;
  lost_original text;
  via_batch text[] := '{}'::text[];
  issued text;
  has_corrections boolean;
  statement text;
begin
  -- Corrections whose original is not recorded yet can only be validated against this batch's
  -- copy of it: remember them (user and original, joined by a unit separator), so that a
  -- correction of an original recorded before the batch (a resent batch) is not mistaken below
  -- for one whose batch original another transaction recorded first.
  execute replace($q$select exists (select from @source@ where u.corrects_event_id is not null)$q$, '@source@', source)
    into has_corrections
    using event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
            error_codes, billables, attributes_list, corrects_event_ids;
  if has_corrections then
    execute replace($q$
      select coalesce(array_agg(u.user_id || E'\x1f' || u.corrects_event_id), '{}')
        from @source@
       where u.corrects_event_id is not null
         and not exists (select from tally.event_keys k
                          where k.user_id = u.user_id and k.event_id = u.corrects_event_id)$q$, '@source@', source)
      into via_batch
      using event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
            error_codes, billables, attributes_list, corrects_event_ids;
  end if;

  -- The same rules as the row trigger, checked for the whole batch before anything is written.
  if not has_corrections then
    -- No correction: each row is checked on its own (the rules inline into this scan).
    execute replace($q$
    select u.ord, u.event_id,
           tally._event_problem(u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0), coalesce(u.occurred_at, now()),
                                u.duration_ms, coalesce(u.cost, 0), coalesce(u.status, 'succeeded'), u.error_code,
                                coalesce(u.attributes, '{}'), u.corrects_event_id) as problem
      from @source@
     where tally._event_problem(u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0), coalesce(u.occurred_at, now()),
                                u.duration_ms, coalesce(u.cost, 0), coalesce(u.status, 'succeeded'), u.error_code,
                                coalesce(u.attributes, '{}'), u.corrects_event_id) is not null
     order by u.ord
     limit 1$q$, '@source@', source)
      into bad_ord, bad_event, bad_problem
      using event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
            error_codes, billables, attributes_list, corrects_event_ids;
  else
    execute replace($q$
    with input as (
      select u.ord, u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0) as quantity, coalesce(u.occurred_at, now()) as occurred_at,
             u.duration_ms, coalesce(u.cost, 0) as cost, coalesce(u.status, 'succeeded') as status, u.error_code,
             coalesce(u.attributes, '{}') as attributes, u.corrects_event_id
        from @source@
    ), checked as (
      select b.*,
             coalesce(k.event_id, o.event_id) is not null as original_found,
             coalesce(k.correctable, o.status = 'succeeded' and o.corrects_event_id is null) as original_correctable
        from input b
        -- index probes for corrections only: never a scan of the (large) key table;
        -- an original is looked up under the correction's user (the key is per user)
        left join lateral (select k.event_id, k.correctable from tally.event_keys k
                            where b.corrects_event_id is not null
                              and k.user_id = b.user_id and k.event_id = b.corrects_event_id
                            limit 1) k on true
        -- an original may also come in the same batch, before or after its correction
        left join (select distinct on (i.user_id, i.event_id) i.user_id, i.event_id, i.status, i.corrects_event_id
                     from input i order by i.user_id, i.event_id, i.ord) o
          on o.user_id = b.user_id and o.event_id = b.corrects_event_id and k.event_id is null
    )
    select p.ord, p.event_id, p.problem
      from (
        select b.ord, b.event_id,
               coalesce(
                 tally._event_problem(b.event_id, b.user_id, b.kind, b.quantity, b.occurred_at, b.duration_ms,
                                      b.cost, b.status, b.error_code, b.attributes, b.corrects_event_id),
                 case
                   when b.corrects_event_id is null then null
                   when not b.original_found or b.corrects_event_id = b.event_id
                     then array['PT008', 'corrects_event_id',
                                format('corrects_event_id %L names no recorded event of user %L', b.corrects_event_id, b.user_id)]
                   when not b.original_correctable
                     then array['PT008', 'corrects_event_id', format('corrects_event_id %L is not a succeeded original event; only those can be corrected', b.corrects_event_id)]
                 end) as problem
          from checked b
      ) as p
     where p.problem is not null
     order by p.ord
     limit 1$q$, '@source@', source)
      into bad_ord, bad_event, bad_problem
      using event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
            error_codes, billables, attributes_list, corrects_event_ids;
  end if;
  if bad_problem is not null then
    raise exception using errcode = bad_problem[1], column = bad_problem[2], message = bad_problem[3],
      detail = format('batch row %s (event_id %L)', bad_ord, bad_event);
  end if;

  -- The rows below are validated already: let them skip the row trigger. Its WHEN
  -- clause lets a row with recorded_at set through only while tally.batch_token is
  -- set, and the log's statement trigger accepts that setting only with a one-time
  -- token issued here, in this transaction, which it consumes.
  issued := gen_random_uuid()::text;
  insert into tally.batch_tokens (token) values (issued);
  perform set_config('tally.batch_token', issued, true);

  -- Exactly-once per (user_id, event_id), in key order so two overlapping batches cannot
  -- deadlock; a key repeated inside the batch counts once (its first occurrence wins). The order
  -- is the byte order (collation "C"): the same for every batch path and cheap to sort.
  -- A batch of new keys (the usual case) inserts them plainly, which costs less than ON CONFLICT's
  -- speculative insertion; when one key exists already the statement fails as a whole and runs
  -- again with ON CONFLICT DO NOTHING, which skips the recorded keys (only the keys it inserted
  -- are then new events).
  statement := $sql$
  with firsts as (
      select distinct on (u.user_id collate "C", u.event_id collate "C")
             u.event_id, u.user_id, u.kind, coalesce(u.quantity, 0) as quantity, coalesce(u.occurred_at, now()) as occurred_at,
             u.duration_ms, coalesce(u.cost, 0) as cost, coalesce(u.status, 'succeeded') as status, u.error_code,
             coalesce(u.billable, true) as billable, coalesce(u.attributes, '{}') as attributes, u.corrects_event_id
        from @source@
       order by u.user_id collate "C", u.event_id collate "C", u.ord
    ), fresh as (
      insert into tally.event_keys (user_id, event_id, occurred_at, correctable)
      select f.user_id, f.event_id, f.occurred_at, f.status = 'succeeded' and f.corrects_event_id is null
        from firsts f order by f.user_id collate "C", f.event_id collate "C"
      @on_conflict@
      returning user_id, event_id
    ), new_events as (
      -- The plan in force when the usage happened, as the row trigger records it.
      select f.*,
             coalesce(
               (select s.plan from tally.subscriptions s
                 where s.user_id = f.user_id and s.started_at <= f.occurred_at
                   and (s.ended_at is null or s.ended_at > f.occurred_at)
                 order by s.started_at desc limit 1),
               (select p.plan from tally.plans p where p.is_default)) as plan
        from firsts f @join_fresh@
    ), logged as (
      insert into tally.usage_events
        (event_id, user_id, kind, occurred_at, recorded_at, quantity, duration_ms, cost, status, error_code,
         billable, attributes, corrects_event_id, plan)
      select b.event_id, b.user_id, b.kind, b.occurred_at, statement_timestamp(), b.quantity, b.duration_ms, b.cost,
             b.status, b.error_code, b.billable, b.attributes, b.corrects_event_id, b.plan
        from new_events b
      returning 1
    ), deltas as (
      insert into tally.pending_deltas
        (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms,
         timed_events, cost, billable, is_use, plan)
      select b.user_id, b.kind, b.occurred_at, b.attributes,
             case when b.status = 'reversed' then -1 when b.status <> 'succeeded' or b.corrects_event_id is not null then 0 else 1 end,
             case when b.status = 'failed' then 1 else 0 end,
             case when b.status in ('succeeded', 'reversed') then b.quantity else 0 end,
             case when b.status in ('succeeded', 'reversed') then coalesce(b.duration_ms, 0) else 0 end,
             case when b.duration_ms is null or b.status not in ('succeeded', 'reversed') then 0
                  when b.status = 'reversed' then -1 when b.corrects_event_id is not null then 0 else 1 end,
             case when b.status in ('succeeded', 'reversed') then b.cost else 0 end,
             b.billable and b.status in ('succeeded', 'reversed'),
             b.status = 'succeeded' and b.corrects_event_id is null, b.plan
        from new_events b
    ), reversed as (
      -- One reversal per original (tally.reversals); a concurrent one waits, then conflicts.
      insert into tally.reversals (user_id, original_event_id, event_id)
      select b.user_id, b.corrects_event_id, b.event_id from new_events b where b.status = 'reversed'
       order by b.user_id, b.corrects_event_id
      on conflict do nothing
      returning user_id, event_id
    )
    select (select count(*) from logged),
           (select b.corrects_event_id from new_events b
             where b.status = 'reversed'
               and (b.user_id, b.event_id) not in (select r.user_id, r.event_id from reversed r) limit 1),
           -- A correction validated against an original of this batch is only valid if that original
           -- was recorded here: a concurrent transaction may have committed the same event_id first
           -- for the same user, and then this batch's original was skipped as a duplicate.
           (select b.corrects_event_id from new_events b
             where cardinality($13) > 0 and b.corrects_event_id is not null
               and b.user_id || E'\x1f' || b.corrects_event_id = any ($13)
               and (b.user_id, b.corrects_event_id) in (select f.user_id, f.event_id from firsts f)
               and (b.user_id, b.corrects_event_id) not in (select n.user_id, n.event_id from new_events n) limit 1)
  $sql$;
  statement := replace(statement, '@source@', source);
  begin
    execute replace(replace(statement, '@on_conflict@', ''), '@join_fresh@', '')
      into added, twice_reversed, lost_original
      using event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
            error_codes, billables, attributes_list, corrects_event_ids, via_batch;
  exception when unique_violation then
    execute replace(replace(statement, '@on_conflict@', 'on conflict do nothing'),
                    '@join_fresh@', 'join fresh using (user_id, event_id)')
      into added, twice_reversed, lost_original
      using event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs, statuses,
            error_codes, billables, attributes_list, corrects_event_ids, via_batch;
  end;
  -- Every later insert of this transaction goes through the row trigger again.
  perform set_config('tally.batch_token', '', true);
  if lost_original is not null then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names an event of this batch that another transaction recorded first; send the batch again',
                       lost_original);
  end if;
  if twice_reversed is not null then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is already reversed', twice_reversed);
  end if;

  return added;
end
$$;

comment on function tally._record_rows(boolean, text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]) is
  'Internal set-wise batch path of tally.record_usage_batch (arrays) and tally._record_staged (the staging table): all-or-nothing validation, exactly-once by (user_id, event_id), log, key and pending-delta rows. Returns the number of new events.';
