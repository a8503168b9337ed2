-- Revision 0005 undone: the batch path and the settings change as of revision 0004.

-- functions/0210_record_usage_batch.sql
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
set search_path = pg_catalog, pg_temp
as $$
declare
  n     integer := cardinality(event_ids);
  bad   record;
  added integer;
  twice_reversed text;
  lost_original text;
  via_batch text[] := '{}'::text[];
  issued text;
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

  if tally._is_distributed() then
    -- Citus: the set-wise statements below cannot run there (a lateral join to a distributed
    -- table, data-modifying CTEs over several distributed tables), and a setting made with
    -- set_config does not reach the workers, where the row trigger fires. So the batch is
    -- validated here and its rows go through the row trigger on their user's shard.
    return tally._record_usage_batch_distributed(event_ids, user_ids, kinds, quantities, occurred_ats,
                                                 durations_ms, costs, statuses, error_codes, billables,
                                                 attributes_list, corrects_event_ids);
  end if;

  -- Corrections whose original is not recorded yet can only be validated against this batch's
  -- copy of it: remember them (user and original, joined by a unit separator), so that a
  -- correction of an original recorded before the batch (a resent batch) is not mistaken below
  -- for one whose batch original another transaction recorded first.
  if cardinality(array_remove(corrects_event_ids, null)) > 0 then
    select coalesce(array_agg(u.user_id || E'\x1f' || u.corrects_event_id), '{}') into via_batch
      from unnest(user_ids, corrects_event_ids) as u(user_id, corrects_event_id)
     where u.corrects_event_id is not null
       and not exists (select from tally.event_keys k
                        where k.user_id = u.user_id and k.event_id = u.corrects_event_id);
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
           coalesce(k.event_id, o.event_id) is not null as original_found,
           coalesce(k.correctable, o.status = 'succeeded' and o.corrects_event_id is null) as original_correctable
      from input b
      -- index probes for corrections only: never a scan of the (large) key table;
      -- an original is looked up under the correction's user (the key is per user)
      left join lateral (select k.event_id, k.correctable from tally.event_keys k
                          where b.corrects_event_id is not null
                            and k.user_id = b.user_id and k.event_id = b.corrects_event_id) k on true
      -- an original may also come in the same batch, before or after its correction
      left join (select distinct on (i.user_id, i.event_id) i.user_id, i.event_id, i.status, i.corrects_event_id
                   from input i order by i.user_id, i.event_id, i.ord) o
        on o.user_id = b.user_id and o.event_id = b.corrects_event_id and k.event_id is null
  )
  select p.ord, p.event_id, p.problem
    into bad
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
   limit 1;
  if found then
    raise exception using errcode = bad.problem[1], column = bad.problem[2], message = bad.problem[3],
      detail = format('batch row %s (event_id %L)', bad.ord, bad.event_id);
  end if;

  -- The rows below are validated already: let them skip the row trigger. Its WHEN
  -- clause lets a row with recorded_at set through only while tally.batch_token is
  -- set, and the log's statement trigger accepts that setting only with a one-time
  -- token issued here, in this transaction, which it consumes.
  issued := gen_random_uuid()::text;
  insert into tally.batch_tokens (token) values (issued);
  perform set_config('tally.batch_token', issued, true);

  -- Exactly-once per (user_id, event_id), in key order so two overlapping batches cannot
  -- deadlock; a key repeated inside the batch counts once (its first occurrence wins).
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
  ), fresh as (
    insert into tally.event_keys (user_id, event_id, occurred_at, correctable)
    select f.user_id, f.event_id, f.occurred_at, f.status = 'succeeded' and f.corrects_event_id is null
      from firsts f order by f.user_id, f.event_id
    on conflict do nothing
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
      from firsts f join fresh using (user_id, event_id)
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
           where b.corrects_event_id is not null
             and b.user_id || E'\x1f' || b.corrects_event_id = any (via_batch)
             and (b.user_id, b.corrects_event_id) in (select f.user_id, f.event_id from firsts f)
             and (b.user_id, b.corrects_event_id) not in (select n.user_id, n.event_id from new_events n) limit 1)
    into added, twice_reversed, lost_original;
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

comment on function tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]) is
  'Records a batch of usage events given as parallel arrays, set-wise: all-or-nothing validation, exactly-once by (user_id, event_id). Returns the number of new events.';

-- functions/0212_begin_staging.sql
-- Creates this session's staging table pg_temp.tally_staging (if missing) for COPY-based batches.
-- Called by the Python client's record_many (and by any producer) before COPY ... then tally.record_usage_staged().
create or replace function tally.begin_staging()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('pg_temp.tally_staging') is null then
    -- Rows live until the end of the transaction that stages them.
    create temporary table tally_staging (
      event_id          text,
      user_id           text,
      kind              text,
      quantity          bigint,
      occurred_at       timestamptz,
      duration_ms       bigint,
      cost              numeric,
      status            text,
      error_code        text,
      billable          boolean,
      attributes        jsonb,
      corrects_event_id text
    ) on commit delete rows;
  end if;
end
$$;

comment on function tally.begin_staging() is
  'Creates the session''s temporary staging table pg_temp.tally_staging (same columns as the log, no rules) for COPY batches; call tally.record_usage_staged() in the same transaction.';

-- functions/0214_record_usage_staged.sql
-- Records every row of pg_temp.tally_staging through tally.record_usage_batch and empties the table.
-- Called by the Python client's record_many after COPY into the staging table, in the same transaction.
create or replace function tally.record_usage_staged()
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  added integer;
begin
  if to_regclass('pg_temp.tally_staging') is null then
    raise exception using errcode = 'PT011',
      message = 'no staging table in this session: call tally.begin_staging() and COPY into pg_temp.tally_staging first';
  end if;
  -- Arrays are built server-side; the batch function sorts keys itself.
  select tally.record_usage_batch(
           array_agg(s.event_id), array_agg(s.user_id), array_agg(s.kind), array_agg(s.quantity),
           array_agg(s.occurred_at), array_agg(s.duration_ms), array_agg(s.cost), array_agg(s.status),
           array_agg(s.error_code), array_agg(s.billable), array_agg(s.attributes), array_agg(s.corrects_event_id))
    into added
    from pg_temp.tally_staging s;
  delete from pg_temp.tally_staging;
  return coalesce(added, 0);
end
$$;

comment on function tally.record_usage_staged() is
  'Records the rows COPYed into pg_temp.tally_staging (validated all-or-nothing, exactly-once) and empties it; returns how many were new.';

-- functions/0445_sync_billing_anchor.sql
-- Recomputes a user's subscription anchor (local day of month the running subscription started) and, when the time zone
-- or the effective anchor now differs from old_tz / old_anchor, re-buckets the user's retained history in this transaction.
-- Called by tally.set_user_settings, tally.start_subscription and tally.end_subscription after they change the user's rows.
create or replace function tally._sync_billing_anchor(user_id text, old_tz text, old_anchor integer)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  tz      text := tally._user_time_zone(_sync_billing_anchor.user_id);
  sub_day integer;
begin
  select extract(day from s.started_at at time zone tz)::integer into sub_day
    from tally.subscriptions s
   where s.user_id = _sync_billing_anchor.user_id and s.ended_at is null
   order by s.started_at desc
   limit 1;
  if sub_day is not null then
    insert into tally.user_settings as s (user_id, subscription_anchor_day)
    values (_sync_billing_anchor.user_id, sub_day)
    on conflict on constraint user_settings_pkey do update
      set subscription_anchor_day = excluded.subscription_anchor_day,
          updated_at = excluded.updated_at  -- the default now(): Citus allows no volatile call here
      where s.subscription_anchor_day is distinct from excluded.subscription_anchor_day;
  else
    update tally.user_settings s set subscription_anchor_day = null, updated_at = now()
     where s.user_id = _sync_billing_anchor.user_id and s.subscription_anchor_day is not null;
  end if;

  -- The rollups are bucketed with the old zone and anchor: rebuild this user's
  -- retained history (pending deltas stay pending and are merged with the new
  -- settings). The rebuild holds the merge lock to the end of the transaction, so
  -- no merge can fold this user's deltas with the old settings meanwhile.
  if tz is distinct from old_tz or tally._period_anchor(_sync_billing_anchor.user_id) is distinct from old_anchor then
    perform tally.rebuild(_sync_billing_anchor.user_id);
  end if;
end
$$;

comment on function tally._sync_billing_anchor(text, text, integer) is
  'Sets the user''s subscription anchor from the running subscription and, when the time zone or effective billing anchor changed from old_tz / old_anchor, rebuilds the user''s retained rollups in the same transaction (internal).';

-- functions/0730_usage_history.sql
-- Usage history of one user: every day, week (Monday first) or month bucket of a range in local time, zero-filled, optionally stacked by a dimension.
-- Called by usage pages (charts) and the Python client's usage_history(); exact at commit (rollups + pending deltas).
create or replace function tally.usage_history(user_id text, range text default '30d', bucket text default 'day',
                                               dimension text default null, from_day date default null,
                                               to_day date default null, at timestamptz default now())
returns table (
  bucket_start date,
  bucket_end   date,
  value        text,
  events       bigint,
  quantity     numeric,
  duration_ms  numeric,
  cost         numeric,
  failures     bigint,
  unit         text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  r     record;
  step  interval;
begin
  if bucket is null or bucket not in ('day', 'week', 'month') then
    raise exception using errcode = 'PT011', column = 'bucket',
      message = format('bucket %L is not known: use day, week or month', bucket);
  end if;
  if dimension is not null then
    perform tally._dimension_keys(dimension);
  end if;
  r := tally._range_days(range, from_day, to_day, today);
  step := ('1 ' || bucket)::interval;
  -- Days outside the range are not counted, also in a first or last bucket that
  -- the range cuts; every bucket appears, and with a dimension every value that
  -- occurs in the range appears in every bucket.
  return query
  with days as (
    select date_trunc(bucket, d.day::timestamp)::date as b, d.value, d.events, d.quantity, d.duration_ms, d.cost, d.failures,
           case when dimension is null or dimension = 'kind' then tally._kind_unit(d.value) end as unit
      from tally.daily_totals(usage_history.user_id, coalesce(dimension, 'kind'), r.first_day, r.last_day) d
  ), units as (
    -- Quantities add within one unit only: summed over kinds of several units, the
    -- range shows no quantity at all (NULL) rather than a number in no unit.
    select count(distinct d.unit) filter (where d.quantity <> 0) as n,
           min(d.unit) filter (where d.quantity <> 0) as unit
      from days d
  ), buckets as (
    select g::date as b
      from generate_series(date_trunc(bucket, r.first_day::timestamp), r.last_day::timestamp, step) g
  ), vals as (
    select distinct d.value from days d where dimension is not null
    union all
    select null::text where dimension is null or not exists (select from days)
  )
  select k.b, (k.b + step)::date, v.value, coalesce(sum(d.events), 0)::bigint,
         case when dimension is not null or min(u.n) <= 1 then coalesce(sum(d.quantity), 0) end,
         coalesce(sum(d.duration_ms), 0), coalesce(sum(d.cost), 0), coalesce(sum(d.failures), 0)::bigint,
         case when dimension = 'kind' then tally._kind_unit(v.value)
              when dimension is null and min(u.n) = 1 then min(u.unit) end
    from buckets k
   cross join vals v
   cross join units u
    left join days d on d.b = k.b and (dimension is null or d.value = v.value)
   group by k.b, v.value
   order by k.b, v.value;
end
$$;

comment on function tally.usage_history(text, text, text, text, date, date, timestamptz) is
  'Usage of a user per bucket (day, week starting Monday, or month of local days) over a range (7d, 30d, 3m, 12m, any N[dwmy] ending today, or custom from_day..to_day), every bucket present with zeros; bucket_end is exclusive; stacked by a declared dimension when given (value NULL otherwise). Quantities add within one unit only: unstacked over kinds of several units the quantity is NULL; unit names the quantity''s unit (NULL when mixed, or stacked by a dimension other than kind). Exact at commit.';

drop function tally._record_staged();
drop function tally._record_rows(boolean, text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]);
