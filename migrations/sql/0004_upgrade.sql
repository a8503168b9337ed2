-- Revision 0004: beyond one server.
--   * Exactly-once per user: tally.event_keys and tally.reversals are keyed by (user_id, event_id),
--     so every row of an event lives on the user's shard of a distributed install; corrections
--     name their user (tally.reverse_usage and tally.amend_usage take user_id first).
--   * Every function as of this revision (the merge, erasure and locks that a Citus cluster can run;
--     read paths a hot standby can serve).
-- Frozen: this file keeps its meaning whatever later commits do to db/ and functions/.

do $$
declare
  f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_catalog.pg_proc p where p.pronamespace = 'tally'::regnamespace loop
    begin
      execute format('drop function %s', f);
    exception when dependent_objects_still_exist then
      null;  -- a trigger, policy, constraint or view uses it: replaced in place below
    end;
  end loop;
end
$$;

-- ============================================================================
-- The exactly-once keys, per user. Existing keys keep their user; a reversal takes
-- the user of its own key (a reversal is always of the original's user).
-- ============================================================================

create table tally.event_keys_by_user (
  user_id     text        not null,
  event_id    text        collate "C" not null,
  occurred_at timestamptz not null,
  correctable boolean     not null,
  primary key (user_id, event_id)
);
insert into tally.event_keys_by_user (user_id, event_id, occurred_at, correctable)
select k.user_id, k.event_id, k.occurred_at, k.correctable from tally.event_keys k;

create table tally.reversals_by_user (
  user_id           text not null,
  original_event_id text collate "C" not null,
  event_id          text collate "C" not null,
  primary key (user_id, original_event_id)
);
insert into tally.reversals_by_user (user_id, original_event_id, event_id)
select k.user_id, r.original_event_id, r.event_id
  from tally.reversals r join tally.event_keys k on k.event_id = r.event_id;

drop table tally.event_keys, tally.reversals;
alter table tally.event_keys_by_user rename to event_keys;
alter index tally.event_keys_by_user_pkey rename to event_keys_pkey;
alter table tally.reversals_by_user rename to reversals;
alter index tally.reversals_by_user_pkey rename to reversals_pkey;

comment on table tally.event_keys is
  'Every (user_id, event_id) recorded, kept after its raw partition is dropped so the deduplication window is forever (internal). Also locates an original event for corrections.';
comment on column tally.event_keys.correctable is
  'The event is a succeeded original (not itself a correction), so it may be amended or reversed.';
comment on table tally.reversals is
  'The reversal recorded for each reversed event (internal): an original is reversed at most once, whatever the path and concurrency.';

-- ============================================================================
-- Every function as of this revision, in install order (created again: dropped above),
-- then the grants and row-level security.
-- ============================================================================

-- >>> functions/0020_is_valid_time_zone.sql
-- True when tz is a time zone name PostgreSQL understands ('UTC', 'America/Los_Angeles', '+05:30').
-- Called by the user_settings check constraint and by tally.set_user_settings.
create or replace function tally._is_valid_time_zone(tz text)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if tz is null or length(tz) > 64 then
    return false;
  end if;
  perform now() at time zone tz;
  return true;
exception
  when invalid_parameter_value then
    return false;
end
$$;

comment on function tally._is_valid_time_zone(text) is
  'True when the argument is a time zone name PostgreSQL accepts; used by checks on user settings.';

-- >>> functions/0022_bounded_key.sql
-- A grouping key (dimension value, session id) of at most 200 characters: a longer text becomes its
-- first 160 characters, '...' and the MD5 of the whole text. Called by tally._dimension_value and tally._session_key.
--
-- Attributes may hold up to 16 kB, but a key that long would not fit a rollup's primary
-- key index and would stop the merge; distinct long texts stay distinct keys. The callers
-- test the length first, so this runs only for the rare long text.
create or replace function tally._bounded_key(v text)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case when length(v) <= 200 then v else left(v, 160) || '...' || md5(v) end
$$;

comment on function tally._bounded_key(text) is
  'A dimension value or session id as stored: unchanged up to 200 characters, else its first 160 characters, ''...'' and the MD5 of the whole text (distinct texts stay distinct keys that fit the rollups'' indexes).';

-- >>> functions/0025_dimension_value_combined.sql
-- Combined dimensions (several keys): the values joined by '/', NULL when any is missing.
-- Called by tally._dimension_value.
create or replace function tally._dimension_value_combined(keys text[], kind text, attributes jsonb, plan text)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case when count(*) = count(v) then tally._bounded_key(string_agg(v, '/' order by i)) end
    from unnest(keys) with ordinality as k(key, i),
         lateral (select nullif(case k.key when 'kind' then kind when 'plan' then plan else attributes ->> k.key end, '') as v) as x
$$;

comment on function tally._dimension_value_combined(text[], text, jsonb, text) is
  'Value of a dimension of several keys: the attribute values joined by ''/''; NULL when any is missing or empty.';

-- >>> functions/0030_dimension_value.sql
-- The value of one declared dimension for an event: attribute values for keys joined by '/'.
-- Called by the merge, the rebuild and every read that adds pending deltas.
--
-- Not pinned to a search_path on purpose: a pinned SQL function is never inlined,
-- and this one runs once per event and dimension. It names only its arguments
-- and pg_catalog operators (spelled OPERATOR(pg_catalog.x)), so no caller's
-- search_path can change what it does.
create or replace function tally._dimension_value(keys text[], kind text, attributes jsonb, plan text)
returns text
language sql
immutable
parallel safe
as $$
  select case
    when pg_catalog.cardinality(keys) OPERATOR(pg_catalog.=) 1 then
      -- Over 200 characters (rare) the key is shortened by tally._bounded_key; the test
      -- comes first so the common path stays an inlined expression.
      case when pg_catalog.length(
                  case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind when keys[1] OPERATOR(pg_catalog.=) 'plan' then plan
                       else attributes OPERATOR(pg_catalog.->>) keys[1] end)
                OPERATOR(pg_catalog.>) 200
           then tally._bounded_key(
                  case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind when keys[1] OPERATOR(pg_catalog.=) 'plan' then plan
                       else attributes OPERATOR(pg_catalog.->>) keys[1] end)
           else nullif(
                  case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind when keys[1] OPERATOR(pg_catalog.=) 'plan' then plan
                       else attributes OPERATOR(pg_catalog.->>) keys[1] end,
                  '')
      end
    else tally._dimension_value_combined(keys, kind, attributes, plan)
  end
$$;

comment on function tally._dimension_value(text[], text, jsonb, text) is
  'Value of a dimension declared with these keys for an event of this kind, attributes and plan in force (the key kind means the kind, the key plan the plan, any other key an attribute); NULL when any key is missing or empty; over 200 characters shortened by tally._bounded_key.';

-- >>> functions/0040_period_start.sql
-- First local day of the billing period that contains local day d, for periods anchored on anchor_day.
-- Called by the merge, the rebuild and the billing-period reads.
create or replace function tally._period_start(d date, anchor_day integer)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- A period starts on day anchor_day of a month, or on the month's last day when
  -- the month is shorter (anchor 31: Jan 31, Feb 28, Mar 31, Apr 30, ...).
  select case
    when extract(day from d) >= least(anchor_day, extract(day from date_trunc('month', d) + interval '1 month - 1 day'))
      then date_trunc('month', d)::date
           + (least(anchor_day, extract(day from date_trunc('month', d) + interval '1 month - 1 day'))::integer - 1)
    else (date_trunc('month', d) - interval '1 month')::date
         + (least(anchor_day, extract(day from date_trunc('month', d) - interval '1 day'))::integer - 1)
  end
$$;

comment on function tally._period_start(date, integer) is
  'Start of the billing period containing local day d when periods begin on day anchor_day (1-31) of each month, or on the last day of months shorter than anchor_day.';

-- >>> functions/0041_period_end.sql
-- First local day after the billing period that starts on period_start: the next month's anchor day (clamped to its length).
-- Called by tally.period_totals, tally.quota_forecast and tally.summary_card.
create or replace function tally._period_end(period_start date, anchor_day integer)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select (date_trunc('month', period_start) + interval '1 month')::date
         + (least(anchor_day, extract(day from date_trunc('month', period_start) + interval '2 months - 1 day'))::integer - 1)
$$;

comment on function tally._period_end(date, integer) is
  'End (exclusive) of the billing period starting on period_start when periods begin on day anchor_day (1-31) of each month, clamped to the length of the next month.';

-- >>> functions/0060_current_user_id.sql
-- The user a tally_reader session may see: the tally.user_id setting (NULL when unset: nothing is visible).
-- Called by the row-level security policies; application backends set it per request.
--
-- Not pinned to a search_path so policies can inline it (it calls one pg_catalog
-- function by its qualified name).
create or replace function tally.current_user_id()
returns text
language sql
stable
parallel safe
as $$
  select pg_catalog.current_setting('tally.user_id', true)
$$;

comment on function tally.current_user_id() is
  'The user id a reader session is scoped to (setting tally.user_id, e.g. SET LOCAL tally.user_id = ''user-42''); NULL when unset.';

-- >>> functions/0090_event_problem.sql
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

-- >>> functions/0111_trg_usage_events_before_insert_record.sql
-- Row trigger on tally.usage_events: validates, deduplicates by (user_id, event_id) and appends the pending delta.
-- Fires for every INSERT/COPY row that does not come through tally.record_usage_batch (which does this set-wise).
create or replace function tally._trg_usage_events_before_insert_record()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  is_correction boolean := new.corrects_event_id is not null;
  original      record;
  succeeded     boolean;
  problem       text[];
begin
  -- Fast path: one expression (compiled once per session) accepts a valid row;
  -- tally._event_problem only runs to explain a rejection. Keep the two in step
  -- (tests/pgtap/log/validation checks every rule through this trigger).
  -- (A trigger WHEN clause would be re-planned for every single-row statement.)
  if not coalesce(
       new.event_id <> '' and new.user_id <> '' and new.kind <> ''
       and length(new.event_id) <= 200 and length(new.user_id) <= 200 and length(new.kind) <= 64
       and (new.error_code is null or length(new.error_code) <= 200)
       and (not is_correction or length(new.corrects_event_id) <= 200)
       and (new.status = 'succeeded' or new.status = 'failed' or new.status = 'cancelled'
            or (new.status = 'reversed' and is_correction))
       and new.quantity is not null and new.cost > -1e15 and new.cost < 1e15 and scale(new.cost) <= 20
       and new.quantity between -1000000000000000 and 1000000000000000
       and (new.duration_ms is null or new.duration_ms between -1000000000000 and 1000000000000)
       and (is_correction or (new.quantity >= 0 and new.cost >= 0 and (new.duration_ms is null or new.duration_ms >= 0)))
       and new.occurred_at >= '2000-01-01 00:00:00+00' and new.occurred_at <= statement_timestamp() + interval '1 day'
       and jsonb_typeof(new.attributes) = 'object'
       and ((pg_column_size(new.attributes) <= 1024 and pg_column_compression(new.attributes) is null)
            or octet_length(new.attributes::text) <= 16384),
       false) then
    problem := tally._event_problem(new.event_id, new.user_id, new.kind, new.quantity, new.occurred_at,
                                    new.duration_ms, new.cost, new.status, new.error_code, new.attributes,
                                    new.corrects_event_id);
    if problem is null then
      raise exception using errcode = 'PT000',
        message = 'usage event rejected by the insert check but no rule names it (a pgtally bug: please report)';
    end if;
    raise exception using errcode = problem[1], column = problem[2], message = problem[3];
  end if;

  if is_correction then
    -- The original is looked up under this event's user: an event_id names an event of one user.
    select k.correctable into original from tally.event_keys k
     where k.user_id = new.user_id and k.event_id = new.corrects_event_id;
    if not found or new.corrects_event_id = new.event_id then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L names no recorded event of user %L', new.corrects_event_id, new.user_id);
    elsif not original.correctable then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L is not a succeeded original event; only those can be corrected', new.corrects_event_id);
    end if;
  end if;

  new.recorded_at := statement_timestamp();
  -- The plan in force when the usage happened, fixed now: usage by plan never moves later.
  new.plan := coalesce(
    (select s.plan from tally.subscriptions s
      where s.user_id = new.user_id and s.started_at <= new.occurred_at
        and (s.ended_at is null or s.ended_at > new.occurred_at)
      order by s.started_at desc limit 1),
    (select p.plan from tally.plans p where p.is_default));

  -- Exactly-once: the first committed insert of a key wins; a concurrent retry waits
  -- for it and then skips silently, so the producer's transaction goes on.
  insert into tally.event_keys (user_id, event_id, occurred_at, correctable)
  values (new.user_id, new.event_id, new.occurred_at, new.status = 'succeeded' and not is_correction)
  on conflict do nothing;
  if not found then
    return null;
  end if;

  if new.status = 'reversed' then
    -- A concurrent reversal of the same original waits here, then fails.
    insert into tally.reversals (user_id, original_event_id, event_id)
    values (new.user_id, new.corrects_event_id, new.event_id)
    on conflict do nothing;
    if not found then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('event %L is already reversed', new.corrects_event_id);
    end if;
  end if;

  succeeded := new.status = 'succeeded';
  insert into tally.pending_deltas
    (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms,
     timed_events, cost, billable, is_use, plan)
  values
    (new.user_id, new.kind, new.occurred_at, new.attributes,
     case when not succeeded then (case when new.status = 'reversed' then -1 else 0 end)
          when is_correction then 0 else 1 end,
     case when new.status = 'failed' then 1 else 0 end,
     case when succeeded or new.status = 'reversed' then new.quantity else 0 end,
     case when succeeded or new.status = 'reversed' then coalesce(new.duration_ms, 0) else 0 end,
     case when new.duration_ms is null or not (succeeded or new.status = 'reversed') then 0
          when new.status = 'reversed' then -1 when is_correction then 0 else 1 end,
     case when succeeded or new.status = 'reversed' then new.cost else 0 end,
     new.billable and (succeeded or new.status = 'reversed'),
     succeeded and not is_correction, new.plan);
  return new;
end
$$;

comment on function tally._trg_usage_events_before_insert_record() is
  'Validates a new usage event (SQLSTATE class PT, message naming the field), checks a correction''s original, records the plan in force, skips a duplicate (user_id, event_id) silently and appends the event''s signed contribution to tally.pending_deltas.';

-- >>> functions/0112_trg_usage_events_check_batch_token.sql
-- Statement trigger on tally.usage_events and on each of its partitions: admits the setting tally.batch_token
-- only with the one-time token tally.record_usage_batch (or tally.ensure_partitions) issued for this INSERT.
create or replace function tally._trg_usage_events_check_batch_token()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  presented text := current_setting('tally.batch_token', true);
begin
  -- The trigger's WHEN clause already skips inserts without the setting.
  if coalesce(presented, '') = '' then
    return null;
  end if;
  -- The trusted paths insert through the parent table only; the token is consumed
  -- here, once, and must come from this transaction.
  if tg_relid = 'tally.usage_events'::regclass then
    delete from tally.batch_tokens t where t.token = presented and t.xact = pg_current_xact_id();
    if found then
      return null;
    end if;
  end if;
  raise exception using
    errcode = '42501',
    message = format('the setting tally.batch_token is reserved for tally.record_usage_batch; the INSERT into %s does not carry a token it issued',
                     tg_relid::regclass),
    hint = 'Reset tally.batch_token and insert without recorded_at (the database sets it), or call tally.record_usage_batch.';
end
$$;

comment on function tally._trg_usage_events_check_batch_token() is
  'Refuses an INSERT into the usage log made while tally.batch_token is set unless the setting holds the one-time token tally.record_usage_batch issued for it in this transaction, which it consumes (SQLSTATE 42501); so rows skip the row trigger only on the set-wise batch path.';

-- >>> functions/0113_trg_usage_events_refuse_change.sql
-- Row and statement trigger on tally.usage_events: refuses UPDATE, DELETE and TRUNCATE.
-- The log is immutable; corrections are new rows (corrects_event_id), retention drops whole partitions,
-- erasure (tally.forget_user) is the one UPDATE allowed.
create or replace function tally._trg_usage_events_refuse_change()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- tally.forget_user (SECURITY DEFINER, the owner) pseudonymizes user_id in place; on Citus,
  -- where a distribution column never changes, it copies the user's rows and deletes the
  -- originals. Only roles that may UPDATE or DELETE the log at all (the owner) reach this branch.
  if current_setting('tally.erasing', true) = 'on' then
    if tg_op = 'UPDATE' then
      return new;
    elsif tg_op = 'DELETE' then
      return old;
    end if;
  end if;
  raise exception using
    errcode = 'PT009',
    message = format('tally.usage_events is immutable: %s is refused', tg_op),
    hint = 'Record a correction (corrects_event_id, or tally.reverse_usage) instead; old partitions are dropped by tally.apply_retention.';
end
$$;

comment on function tally._trg_usage_events_refuse_change() is
  'Refuses UPDATE, DELETE and TRUNCATE on the usage log (SQLSTATE PT009).';

-- >>> functions/0115_my_usage_events_distributed.sql
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

-- >>> functions/0161_lock.sql
-- Lock a global lock row: blocking, or (wait => false) returning false at once when it is held.
-- Called by merge_pending, apply_retention, forget_user, rebuild, ensure_partitions and refresh_analytics.
create or replace function tally._lock(name text, wait boolean default true)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if wait then
    perform from tally.locks l where l.name = _lock.name for update;
    if not found then
      raise exception 'pgtally: unknown lock %', name;
    end if;
    return true;
  end if;
  perform from tally.locks l where l.name = _lock.name for update skip locked;
  return found;
end
$$;

comment on function tally._lock(text, boolean) is
  'Locks the global lock row name until the end of the transaction (wait => false: returns false instead of waiting); only callable by the owner, so no other role can hold it (internal).';

-- >>> functions/0162_lock_user.sql
-- Lock one user's lock row for a scope (created on first use) until the end of the transaction.
-- Called by check_quota (scope quota:<kind>) and start_subscription / end_subscription (scope subscription).
create or replace function tally._lock_user(user_id text, scope text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A concurrent first insert of the same key waits for its inserter, then finds the row.
  insert into tally.user_locks (user_id, scope) values (_lock_user.user_id, _lock_user.scope)
  on conflict do nothing;
  perform from tally.user_locks l where l.user_id = _lock_user.user_id and l.scope = _lock_user.scope for update;
end
$$;

comment on function tally._lock_user(text, text) is
  'Locks the row (user_id, scope) of tally.user_locks until the end of the transaction, creating it on first use; only the owner can lock it (internal).';

-- >>> functions/0165_is_distributed.sql
-- Whether the usage log is distributed by Citus (pgtally distribute has run on this coordinator).
-- Called by the merge, ensure_partitions, _protect_partition and forget_user to pick their distributed path.
create or replace function tally._is_distributed()
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  found_it boolean;
begin
  if to_regclass('pg_catalog.pg_dist_partition') is null then
    return false;  -- no Citus on this server
  end if;
  -- Dynamic: the catalog table exists only where Citus is installed.
  execute format('select exists (select from %s p where p.logicalrelid = $1)', 'pg_catalog.pg_dist_partition')
     into found_it using to_regclass('tally.usage_events');
  return found_it;
end
$$;

comment on function tally._is_distributed() is
  'True when tally.usage_events is a Citus distributed table (after `pgtally distribute`); false on a single server (internal).';

-- >>> functions/0200_record_usage.sql
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

-- >>> functions/0210_record_usage_batch.sql
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

-- >>> functions/0211_record_usage_batch_distributed.sql
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

-- >>> functions/0212_begin_staging.sql
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

-- >>> functions/0214_record_usage_staged.sql
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

-- >>> functions/0218_original_event.sql
-- The retained log row of a user's event, found through its exactly-once key; PT008 when unknown or dropped.
-- Called by tally.reverse_usage and tally.amend_usage, which book corrections in the original's buckets.
create or replace function tally._original_event(user_id text, original_event_id text)
returns tally.usage_events
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  key  record;
  orig tally.usage_events;
begin
  select k.user_id, k.occurred_at into key from tally.event_keys k
   where k.user_id = _original_event.user_id and k.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names no recorded event of user %L', original_event_id, _original_event.user_id);
  end if;
  -- The key's user and time lead the log index straight to the row (and prune partitions).
  select e.* into orig from tally.usage_events e
   where e.user_id = key.user_id and e.occurred_at = key.occurred_at and e.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is no longer in the retained log; record the correction with explicit amounts',
                       original_event_id);
  end if;
  return orig;
end
$$;

comment on function tally._original_event(text, text) is
  'The retained log row of a user''s event (located through tally.event_keys); raises PT008 when the id is unknown or its partition was dropped (internal).';

-- >>> functions/0220_reverse_usage.sql
-- Reverses a recorded event of a user: a new row with the original's user, kind, attributes and time and negated
-- amounts, so every aggregate bucket of the original drops it at once. Called by producers and the client.
create or replace function tally.reverse_usage(user_id text, original_event_id text, event_id text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  orig tally.usage_events := tally._original_event(reverse_usage.user_id, original_event_id);
  new_row boolean;
begin
  -- The row trigger checks the original is a succeeded original of this user and
  -- not reversed yet (tally.reversals), race-free.
  new_row := tally.record_usage(
    event_id => reverse_usage.event_id, user_id => orig.user_id, kind => orig.kind,
    quantity => -orig.quantity, occurred_at => orig.occurred_at, duration_ms => -orig.duration_ms,
    cost => -orig.cost, status => 'reversed', billable => orig.billable, attributes => orig.attributes,
    corrects_event_id => original_event_id);
  return new_row;
end
$$;

comment on function tally.reverse_usage(text, text, text) is
  'Records a reversal (event_id, a key of the same user) (status reversed, negated amounts, same user, kind, attributes and occurred_at) of a succeeded event; true when new, false when event_id was already recorded.';

-- >>> functions/0225_amend_usage.sql
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

-- >>> functions/0299_prepare_merge_batch.sql
-- Creates (or empties) pg_temp._tally_merge, the batch of deltas the appliers add to the aggregates.
-- Called by tally._merge_pending_locked and tally.rebuild.
create or replace function tally._prepare_merge_batch()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('pg_temp._tally_merge') is null then
    create temporary table _tally_merge (
      user_id      text,
      kind         text,
      occurred_at  timestamptz,
      attributes   jsonb,
      events       integer,
      failures     integer,
      quantity     bigint,
      duration_ms  bigint,
      timed_events integer,
      cost         numeric,
      billable     boolean,
      is_use       boolean,
      local_at     timestamp,
      day          date,
      anchor_day   integer,
      plan         text
    ) on commit drop;
  else
    truncate pg_temp._tally_merge;
  end if;
  -- The keys whose threshold alerts the batch may cross, with the plan in force
  -- (tally._record_quota_alerts fills it on a distributed install).
  if to_regclass('pg_temp._tally_alert_keys') is null then
    create temporary table _tally_alert_keys (
      user_id text, period_start date, kind text, anchor_day integer, plan text
    ) on commit drop;
  else
    truncate pg_temp._tally_alert_keys;
  end if;
end
$$;

comment on function tally._prepare_merge_batch() is
  'Creates or empties the transaction''s merge batch pg_temp._tally_merge (deltas with the user''s local time, local day and billing anchor) and pg_temp._tally_alert_keys (internal).';

-- >>> functions/0300_merge_pending.sql
-- Folds pending deltas into the rollups (lifetime, daily, billing period, and the appliers below) in one transaction.
-- Called on a schedule (pg_cron or `pgtally merge`), by retention and rebuild; reads never need it for exactness.
create or replace function tally._merge_pending_locked(max_rows integer)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  merged integer;
begin
  -- The batch of deltas being merged, with each user's local day and billing anchor.
  -- Readers see the deleted deltas and the updated rollups switch over at commit,
  -- so no read ever counts a delta twice or misses it. Only one merge runs at a
  -- time (the merge lock row, held by the caller) and every applier upserts keys in
  -- sorted order.
  perform tally._prepare_merge_batch();

  if not tally._is_distributed() then
    -- One server: claim exactly max_rows deltas by their physical address (the cheapest key).
    with moved as (
      delete from tally.pending_deltas p
       where p.ctid = any (array(select q.ctid from tally.pending_deltas q limit max_rows))
      returning p.*
    )
    insert into pg_temp._tally_merge
    select m.user_id, m.kind, m.occurred_at, m.attributes, m.events, m.failures, m.quantity, m.duration_ms,
           m.timed_events, m.cost, m.billable, m.is_use,
           m.occurred_at at time zone coalesce(s.time_zone, 'UTC'),
           (m.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date,
           coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1),  -- as tally._period_anchor
           m.plan
      from moved m
      left join tally.user_settings s on s.user_id = m.user_id;
  else
    -- Citus cannot address rows by ctid across shards: claim whole users instead (those
    -- owning the first max_rows deltas), so each shard deletes by its distribution key.
    -- A delta a writer commits meanwhile is not in the delete's snapshot and waits for
    -- the next merge, so nothing is counted twice or lost.
    with moved as (
      delete from tally.pending_deltas p
       where p.user_id = any (array(select distinct q.user_id
                                      from (select r.user_id from tally.pending_deltas r limit max_rows) q))
      returning p.*
    )
    insert into pg_temp._tally_merge
    select m.user_id, m.kind, m.occurred_at, m.attributes, m.events, m.failures, m.quantity, m.duration_ms,
           m.timed_events, m.cost, m.billable, m.is_use,
           m.occurred_at at time zone coalesce(s.time_zone, 'UTC'),
           (m.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date,
           coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1),  -- as tally._period_anchor
           m.plan
      from moved m
      left join tally.user_settings s on s.user_id = m.user_id;
  end if;
  get diagnostics merged = row_count;
  if merged = 0 then
    return 0;
  end if;

  perform tally._apply_rollups();
  -- Appliers of later features read pg_temp._tally_merge the same way.
  perform tally._apply_engagement();
  perform tally._apply_admin();
  return merged;
end
$$;

comment on function tally._merge_pending_locked(integer) is
  'Moves up to max_rows pending deltas into pg_temp._tally_merge and runs every applier on them; the caller holds the merge lock (internal).';

create or replace function tally.merge_pending(max_rows integer default 100000)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if max_rows is null or max_rows < 1 then
    raise exception using errcode = 'PT011', column = 'max_rows', message = 'max_rows must be a positive integer';
  end if;
  -- One merge at a time; a second caller returns 0 at once instead of queueing.
  if not tally._lock('merge', wait => false) then
    return 0;
  end if;
  return tally._merge_pending_locked(max_rows);
end
$$;

comment on function tally.merge_pending(integer) is
  'Folds up to max_rows pending deltas into the rollups and returns how many it merged; returns 0 at once when another merge is running. Schedule it every minute (reads stay exact either way; merging keeps them fast).';

-- >>> functions/0301_apply_rollups.sql
-- Applier: adds the merge batch (pg_temp._tally_merge) to user_daily, user_totals and user_periods.
-- Called by tally._merge_pending_locked and tally.rebuild.
create or replace function tally._apply_rollups(only_dimension text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  with expanded as (
    select m.*, d.name as dimension, tally._dimension_value(d.keys, m.kind, m.attributes, m.plan) as value
      from pg_temp._tally_merge m
     cross join tally.dimensions d
     where only_dimension is null or d.name = only_dimension
  ), daily as (
    insert into tally.user_daily as t
      (user_id, dimension, day, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
    select e.user_id, e.dimension, e.day, e.value, sum(e.events), sum(e.failures), sum(e.quantity),
           sum(e.duration_ms), sum(e.timed_events), sum(e.cost),
           min(e.occurred_at) filter (where e.is_use), max(e.occurred_at) filter (where e.is_use)
      from expanded e
     where e.value is not null
     group by e.user_id, e.dimension, e.day, e.value
     order by e.user_id, e.dimension, e.day, e.value
    on conflict (user_id, dimension, day, value) do update set
      events = t.events + excluded.events, failures = t.failures + excluded.failures,
      quantity = t.quantity + excluded.quantity, duration_ms = t.duration_ms + excluded.duration_ms,
      timed_events = t.timed_events + excluded.timed_events, cost = t.cost + excluded.cost,
      first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)
  )
  insert into tally.user_totals as t
    (user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
  select e.user_id, e.dimension, e.value, sum(e.events), sum(e.failures), sum(e.quantity),
         sum(e.duration_ms), sum(e.timed_events), sum(e.cost),
         min(e.occurred_at) filter (where e.is_use), max(e.occurred_at) filter (where e.is_use)
    from expanded e
   where e.value is not null
   group by e.user_id, e.dimension, e.value
   order by e.user_id, e.dimension, e.value
  on conflict (user_id, dimension, value) do update set
    events = t.events + excluded.events, failures = t.failures + excluded.failures,
    quantity = t.quantity + excluded.quantity, duration_ms = t.duration_ms + excluded.duration_ms,
    timed_events = t.timed_events + excluded.timed_events, cost = t.cost + excluded.cost,
    first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at);

  if only_dimension is not null then
    return;  -- a dimension backfill leaves billing periods alone
  end if;
  insert into tally.user_periods as t (user_id, period_start, kind, events, quantity, duration_ms, cost)
  select m.user_id, tally._period_start(m.day, m.anchor_day), m.kind, sum(m.events), sum(m.quantity),
         sum(m.duration_ms), sum(m.cost)
    from pg_temp._tally_merge m
   where m.billable
   group by 1, 2, 3
   order by 1, 2, 3
  on conflict (user_id, period_start, kind) do update set
    events = t.events + excluded.events, quantity = t.quantity + excluded.quantity,
    duration_ms = t.duration_ms + excluded.duration_ms, cost = t.cost + excluded.cost;
  perform tally._record_quota_alerts();  -- threshold alerts, where the usage is folded in (functions/0878)
end
$$;

comment on function tally._apply_rollups(text) is
  'Merge applier: adds the deltas in pg_temp._tally_merge to the lifetime, daily and billing-period rollups, or only to one dimension''s lifetime and daily rollups (internal).';

-- >>> functions/0310_apply_engagement.sql
-- Applier: adds the merge batch (pg_temp._tally_merge) to the engagement profile: per-session rows and the hour-of-week histogram.
-- Called by tally._merge_pending_locked only.
create or replace function tally._apply_engagement()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Sessions: events sharing attributes.session_id, or one session-kind event.
  -- Keys are upserted in sorted order like every applier (no deadlock with rebuilds).
  insert into tally.user_sessions as s
    (user_id, session_id, events, explicit_events, explicit_ms, first_at, last_end_at)
  select m.user_id, tally._session_key(m.kind, m.attributes, m.occurred_at), sum(m.events),
         sum(case when m.kind = 'session' then m.events else 0 end),
         sum(case when m.kind = 'session' then m.duration_ms else 0 end),
         min(m.occurred_at) filter (where m.is_use),
         max(m.occurred_at + m.duration_ms * interval '1 millisecond') filter (where m.is_use)
    from pg_temp._tally_merge m
   where (m.kind = 'session' or m.attributes ? 'session_id')
     and tally._session_key(m.kind, m.attributes, m.occurred_at) is not null  -- session_id "" or null: no session
   group by 1, 2
   order by 1, 2
  on conflict (user_id, session_id) do update set
    events = s.events + excluded.events,
    explicit_events = s.explicit_events + excluded.explicit_events,
    explicit_ms = s.explicit_ms + excluded.explicit_ms,
    first_at = least(s.first_at, excluded.first_at),
    last_end_at = greatest(s.last_end_at, excluded.last_end_at);

  -- Hour of the week in the user's local time (local_at was computed by the merge).
  insert into tally.user_hours as h (user_id, how, events, failures, quantity, duration_ms, cost)
  select m.user_id, ((extract(isodow from m.local_at)::integer - 1) * 24 + extract(hour from m.local_at)::integer)::smallint,
         sum(m.events), sum(m.failures), sum(m.quantity), sum(m.duration_ms), sum(m.cost)
    from pg_temp._tally_merge m
   group by 1, 2
   order by 1, 2
  on conflict (user_id, how) do update set
    events = h.events + excluded.events, failures = h.failures + excluded.failures,
    quantity = h.quantity + excluded.quantity, duration_ms = h.duration_ms + excluded.duration_ms,
    cost = h.cost + excluded.cost;
end
$$;

comment on function tally._apply_engagement() is
  'Merge applier for the engagement profile: adds the batch in pg_temp._tally_merge to tally.user_sessions and tally.user_hours (internal).';

-- >>> functions/0320_apply_admin.sql
-- Applier: adds the merge batch (pg_temp._tally_merge) to the admin analytics sources: usage per dimension value,
-- funnel step days, daily operational counters and duration histograms. Called by tally._merge_pending_locked only.
create or replace function tally._apply_admin()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Per-user rows only (keys led by user_id, no platform counters: those live in
  -- the materialized views). Merges run one at a time and upsert in key order.
  -- Every key has the UTC day and the plan in force at the event (m.plan, ''
  -- when none), so each admin figure can be read for a range of UTC days and a
  -- plan. tally._analytics_delta_values and tally._analytics_delta_ops fold
  -- deltas the same way (for pending deltas and the raw log's partial days).

  -- Usage per declared dimension, value and kind.
  insert into tally.user_daily_values as t
    (user_id, day, plan, dimension, value, kind, events, succeeded, failures, quantity, duration_ms, timed_events, cost,
     billable_cost, first_at, last_at)
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''), d.name, v.value, m.kind,
         sum(m.events), count(*) filter (where m.is_use), sum(m.failures), sum(m.quantity), sum(m.duration_ms),
         sum(m.timed_events), sum(m.cost), coalesce(sum(m.cost) filter (where m.billable), 0),
         min(m.occurred_at) filter (where m.is_use), max(m.occurred_at) filter (where m.is_use)
    from pg_temp._tally_merge m
   cross join tally.dimensions d
   cross join lateral (select tally._dimension_value(d.keys, m.kind, m.attributes, m.plan) as value) v
   where v.value is not null
   group by 1, 2, 3, 4, 5, 6
   order by 1, 2, 3, 4, 5, 6
  on conflict (user_id, day, plan, dimension, value, kind) do update set
    events = t.events + excluded.events, succeeded = t.succeeded + excluded.succeeded,
    failures = t.failures + excluded.failures, quantity = t.quantity + excluded.quantity,
    duration_ms = t.duration_ms + excluded.duration_ms, timed_events = t.timed_events + excluded.timed_events,
    cost = t.cost + excluded.cost, billable_cost = t.billable_cost + excluded.billable_cost,
    first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at);

  -- Funnels: the first and last succeeded original event per user, kind, UTC day and plan.
  insert into tally.user_kind_days as t (user_id, kind, day, plan, first_at, last_at)
  select m.user_id, m.kind, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''),
         min(m.occurred_at), max(m.occurred_at)
    from pg_temp._tally_merge m
   where m.is_use
   group by 1, 2, 3, 4
   order by 1, 2, 3, 4
  on conflict (user_id, kind, day, plan) do update
    set first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)
   where excluded.first_at < t.first_at or excluded.last_at > t.last_at;

  -- Reliability and activity: attempts (succeeded originals, failures), their
  -- durations, and the net billable cost (reversals and amendments included).
  insert into tally.user_daily_ops as t
    (user_id, day, plan, kind, format, succeeded, failed, timed_events, duration_ms, billable_cost)
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''), m.kind,
         coalesce(left(m.attributes ->> 'format', 64), ''),
         count(*) filter (where m.is_use), sum(m.failures),
         count(*) filter (where m.is_use and m.timed_events = 1),
         coalesce(sum(m.duration_ms) filter (where m.is_use and m.timed_events = 1), 0),
         coalesce(sum(m.cost) filter (where m.billable), 0)
    from pg_temp._tally_merge m
   where m.is_use or m.failures <> 0 or (m.billable and m.cost <> 0)
   group by 1, 2, 3, 4, 5
   order by 1, 2, 3, 4, 5
  on conflict (user_id, day, plan, kind, format) do update set
    succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed,
    timed_events = t.timed_events + excluded.timed_events, duration_ms = t.duration_ms + excluded.duration_ms,
    billable_cost = t.billable_cost + excluded.billable_cost;

  -- Duration histograms of succeeded originals that reported a duration.
  insert into tally.user_daily_durations as t (user_id, day, plan, kind, format, bucket, events)
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, coalesce(m.plan, ''), m.kind,
         coalesce(left(m.attributes ->> 'format', 64), ''), tally._duration_bucket(m.duration_ms), count(*)
    from pg_temp._tally_merge m
   where m.is_use and m.timed_events = 1
   group by 1, 2, 3, 4, 5, 6
   order by 1, 2, 3, 4, 5, 6
  on conflict (user_id, day, plan, kind, format, bucket) do update set events = t.events + excluded.events;
end
$$;

comment on function tally._apply_admin() is
  'Merge applier for the admin analytics (internal): usage per dimension value, first and last use per kind, daily operational counters and duration histograms per user, UTC day and plan in force.';

-- >>> functions/0390_protect_partition.sql
-- Puts the statement-level triggers of the usage log on one partition: immutability, and the batch-token check.
-- Called by tally.ensure_partitions, at install and by upgrades (idempotent): partitions get cloned row triggers only.
create or replace function tally._protect_partition(part regclass)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tally._is_distributed() then
    -- Citus allows row triggers only on distributed tables: a distributed log keeps the
    -- cloned row triggers, and TRUNCATE is refused by privileges (see pgtally distribute).
    return;
  end if;
  execute format('create or replace trigger usage_events_before_change_refuse_statement before update or delete on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
  execute format('create or replace trigger usage_events_before_truncate_refuse before truncate on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
  -- A direct INSERT into a partition fires the partition's statement triggers, not the parent's.
  execute format('create or replace trigger usage_events_before_insert_check_batch_token before insert on %s '
                 'for each statement when (current_setting(''tally.batch_token'', true) <> '''') '
                 'execute function tally._trg_usage_events_check_batch_token()', part);
end
$$;

comment on function tally._protect_partition(regclass) is
  'Creates (or replaces) the statement triggers of a log partition: UPDATE/DELETE/TRUNCATE refusal and the batch-token check of direct INSERTs (internal).';

-- >>> functions/0400_ensure_partitions.sql
-- Creates the monthly partitions of tally.usage_events from one month to another, moving any
-- rows the default partition holds for them. Called at install, by `pgtally partitions` and on a schedule.
create or replace function tally.ensure_partitions(
  from_month date default (date_trunc('month', now()) - interval '1 month')::date,
  to_month   date default (date_trunc('month', now()) + interval '3 months')::date
)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- A session holding any lock on the log (even a reader's open transaction) must not make writers queue
-- behind the partition DDL for long: give up after 2 s (55P03); the next scheduled run creates the month.
set lock_timeout = '2s'
as $$
declare
  month_start date;
  month_end   date;
  lo          timestamptz;
  hi          timestamptz;
  part        text;
  created     integer := 0;
  issued      text;
  distributed boolean;
begin
  if from_month is null or to_month is null or to_month < from_month
     or to_month > from_month + interval '100 years' then
    raise exception using errcode = 'PT011', message = 'ensure_partitions: need from_month <= to_month, at most 100 years apart';
  end if;
  month_start := date_trunc('month', from_month)::date;
  while month_start <= to_month loop
    part := format('usage_events_%s', to_char(month_start, 'YYYY_MM'));
    if to_regclass(format('tally.%I', part)) is null then
      -- Serialize creators; the lock on the default partition makes the move atomic for writers.
      perform tally._lock('partitions');
      if to_regclass(format('tally.%I', part)) is null then
        month_end := (month_start + interval '1 month')::date;
        -- Months are UTC months whatever the session's time zone, so boundaries
        -- made by different sessions always meet.
        lo := month_start::timestamp at time zone 'UTC';
        hi := month_end::timestamp at time zone 'UTC';
        perform 1 from tally.usage_events_default where occurred_at >= lo and occurred_at < hi limit 1;
        if not found then
          execute format('create table tally.%I partition of tally.usage_events for values from (%L) to (%L)',
                         part, lo, hi);
        else
          distributed := tally._is_distributed();
          -- Rows of this month sit in the default partition: detach it (writers wait on the
          -- parent's lock, none fails), create the month, move the rows, re-attach.
          -- A detached table has no triggers, so the move is not a change of the log.
          alter table tally.usage_events detach partition tally.usage_events_default;
          execute format('create table tally.%I partition of tally.usage_events for values from (%L) to (%L)',
                         part, lo, hi);
          -- The rows are recorded already: a one-time batch token (see tally.record_usage_batch)
          -- lets them skip the row trigger, which would take them for duplicates.
          issued := gen_random_uuid()::text;
          if distributed then
            -- On Citus the row trigger fires on the workers, which set_config does not reach;
            -- SET LOCAL does (citus.propagate_set_commands = local, set by pgtally distribute),
            -- but only inside a transaction block or a DO block: hence the DO. The statement
            -- trigger that consumes tokens is dropped there: none is issued.
            execute format('do %L', format('begin set local tally.batch_token = %L; end', issued));
          else
            insert into tally.batch_tokens (token) values (issued);
            perform set_config('tally.batch_token', issued, true);
          end if;
          insert into tally.usage_events
          select * from tally.usage_events_default where occurred_at >= lo and occurred_at < hi;
          if distributed then
            execute 'do $reset$ begin set local tally.batch_token = ''''; end $reset$';
          else
            perform set_config('tally.batch_token', '', true);
          end if;
          -- Detached and locked: the refusal trigger (its own, not the parent's) can step aside
          -- (on Citus it does not exist: distribute drops the statement triggers).
          if not distributed then
            alter table tally.usage_events_default disable trigger usage_events_before_change_refuse_statement;
          end if;
          delete from tally.usage_events_default where occurred_at >= lo and occurred_at < hi;
          if not distributed then
            alter table tally.usage_events_default enable trigger usage_events_before_change_refuse_statement;
          end if;
          alter table tally.usage_events attach partition tally.usage_events_default default;
        end if;
        perform tally._protect_partition(format('tally.%I', part)::regclass);
        execute format('comment on table tally.%I is %L', part,
                       format('Usage log partition for %s (created by tally.ensure_partitions).', to_char(month_start, 'YYYY-MM')));
        created := created + 1;
      end if;
    end if;
    month_start := (month_start + interval '1 month')::date;
  end loop;
  return created;
end
$$;

comment on function tally.ensure_partitions(date, date) is
  'Creates monthly partitions of the usage log covering from_month..to_month (default: last month to three months ahead), moving matching rows out of the default partition. Returns how many it created.';

-- >>> functions/0410_apply_retention.sql
-- Drops whole monthly partitions of the raw log that end before now() - keep; rollups stay.
-- Called by DBAs, `pgtally retention` and schedules. Pending deltas are merged first, so nothing is lost.
create or replace function tally.apply_retention(keep interval)
returns table (partition_name text, range_start date, range_end date, rows_dropped bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- Waiting for a partition's ACCESS EXCLUSIVE lock while holding the merge lock would stall writers and merges
-- behind any open transaction on the log: give up after 2 s (55P03) and let the next scheduled run try again.
set lock_timeout = '2s'
as $$
declare
  horizon timestamptz;
  part    record;
  n       bigint;
begin
  if keep is null or keep < interval '1 day' then
    raise exception using errcode = 'PT011', column = 'keep',
      message = format('keep must be at least 1 day (got %s)', coalesce(keep::text, 'null'));
  end if;
  horizon := now() - keep;
  -- The merge lock keeps merges out while partitions go; merging first guarantees every
  -- delta of a dropped row is already in the rollups.
  perform tally._lock('merge');
  for part in
    select c.relname, c.oid,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)')) as bounds
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'tally.usage_events'::regclass
       and c.relname <> 'usage_events_default'
     order by c.relname
  loop
    continue when part.bounds is null or part.bounds[2]::timestamptz > horizon;
    -- Writers of late events into this month finish before the lock is granted.
    execute format('lock table tally.%I in access exclusive mode', part.relname);
    loop
      exit when tally._merge_pending_locked(100000) = 0;
    end loop;
    execute format('select count(*) from tally.%I', part.relname) into n;
    execute format('drop table tally.%I', part.relname);
    partition_name := part.relname;
    range_start := (part.bounds[1]::timestamptz at time zone 'UTC')::date;
    range_end := (part.bounds[2]::timestamptz at time zone 'UTC')::date;
    rows_dropped := n;
    insert into tally.retention_runs (partition_name, range_start, range_end, rows_dropped)
    values (partition_name, range_start, range_end, rows_dropped);
    return next;
  end loop;
end
$$;

comment on function tally.apply_retention(interval) is
  'Drops raw log partitions whose whole month ends before now() - keep, after merging pending deltas. Lifetime, daily and billing rollups and the deduplication keys are kept. Returns the partitions dropped.';

-- >>> functions/0420_forget_user.sql
-- Forgets a user: replaces their user_id by a fresh pseudonym in every table of the schema.
-- Called by the application on an erasure request (GDPR); platform totals and billing stay correct.
create or replace function tally.forget_user(user_id text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  pseudonym text := 'forgotten-' || gen_random_uuid()::text;
  t         record;
  n         bigint;
  total     bigint := 0;
  distributed boolean;
  dist_tables regclass[] := '{}'::regclass[];
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT001', column = 'user_id', message = 'user_id is required';
  end if;
  -- A producer's open transaction may hold one of the user's quota or subscription lock rows
  -- (check_quota holds it to the end of its transaction): wait for those first, without holding
  -- the merge lock, so that merges go on meanwhile.
  perform from tally.user_locks l where l.user_id = forget_user.user_id for update;
  -- No merge may move this user's deltas while ids change.
  perform tally._lock('merge');
  distributed := tally._is_distributed();
  perform set_config('tally.erasing', 'on', true);
  if distributed then
    -- Dynamic: the catalog table exists only where Citus is installed.
    execute format('select coalesce(array_agg(p.logicalrelid), ''{}'') from %s p where p.partmethod = ''h''',
                   'pg_catalog.pg_dist_partition') into dist_tables;
    -- The shard triggers on the workers do not see this transaction's settings: the log's
    -- triggers step aside for this transaction instead (the owner may; writers wait on the lock).
    -- The copies then keep their recorded_at and plan, and the originals can be deleted.
    alter table tally.usage_events disable trigger user;
  end if;
  -- Every table with a user_id column, including those later features add; the
  -- table names come from the catalog, the ids travel as parameters.
  for t in
    select c.oid::regclass as rel
      from pg_catalog.pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
       and exists (select from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped)
     order by c.relname
  loop
    if t.rel = any (dist_tables) then
      -- Citus never changes a row's distribution column: copy the user's rows under the pseudonym
      -- (to the pseudonym's shard) and delete the originals, in this transaction.
      execute format('insert into %1$s select (pg_catalog.jsonb_populate_record(null::%1$s, pg_catalog.to_jsonb(x)'
                     ' || pg_catalog.jsonb_build_object(''user_id'', $1::text))).* from %1$s x where x.user_id = $2', t.rel)
        using pseudonym, forget_user.user_id;
      execute format('delete from %s where user_id = $1', t.rel) using forget_user.user_id;
    else
      execute format('update %s set user_id = $1 where user_id = $2', t.rel) using pseudonym, forget_user.user_id;
    end if;
    get diagnostics n = row_count;
    total := total + n;
  end loop;
  perform set_config('tally.erasing', 'off', true);
  if distributed then
    alter table tally.usage_events enable trigger user;
  end if;
  if total = 0 then
    return null;  -- unknown or already forgotten: nothing to do
  end if;
  insert into tally.erasures (pseudonym, rows_changed) values (pseudonym, total);
  return pseudonym;
end
$$;

comment on function tally.forget_user(text) is
  'Erasure: replaces a user''s id by a random pseudonym in the log, keys, deltas, rollups and settings (every table with user_id), so totals and billing stay correct but the user cannot be found by id. Returns the pseudonym, or NULL when the id is unknown (idempotent). Logged in tally.erasures.';

-- >>> functions/0430_retained_since.sql
-- Where the retained raw log starts: the end of the latest month dropped by retention, or -infinity.
-- Called by tally.verify and tally.rebuild, which only recompute what the retained log covers.
create or replace function tally._retained_since()
returns timestamptz
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r), '-infinity')
$$;

comment on function tally._retained_since() is
  'Start of the retained raw log: the end of the latest partition tally.apply_retention dropped, or -infinity (internal).';

-- >>> functions/0440_rebuild.sql
-- Rebuilds every table derived from the log (rollups, sessions, hours, admin sources) from the retained log: all users or one,
-- all dimensions or one (backfilling a newly declared dimension). Called by DBAs, `pgtally rebuild` and tally._sync_billing_anchor.
create or replace function tally.rebuild(user_id text default null, dimension text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  recomputed  bigint;
  distributed boolean := tally._is_distributed();
  one_user    text;
  kept_starts date[];
begin
  if dimension is not null then
    perform tally._dimension_keys(dimension);  -- PT010 when not declared
  end if;
  if distributed and rebuild.user_id is null then
    -- Distributed by Citus: every statement below, filtered by one user, runs on that user's
    -- shard, while the set-wise forms over all users are joins Citus refuses. So all users
    -- are rebuilt one by one, in this one transaction (the keys of every user first, so that
    -- a user whose only rows were written past the insert trigger is listed too).
    perform tally._lock('merge');
    if dimension is null then
      perform tally.rebuild_keys(null);
    end if;
    recomputed := 0;
    for one_user in select u.user_id from tally.rebuild_users() u order by 1 loop
      recomputed := recomputed + tally.rebuild(one_user, dimension);
    end loop;
    return recomputed;
  end if;
  -- Merges wait; writers and readers do not (writers never touch the derived tables,
  -- readers switch to the rebuilt rows at commit).
  perform tally._lock('merge');
  -- Which log rows count depends on the exactly-once keys: reconcile them first (a
  -- dimension backfill leaves them alone).
  if dimension is null then
    perform tally.rebuild_keys(rebuild.user_id);
  end if;
  perform tally._prepare_merge_batch();

  -- The users and the part of each table the retained log wholly covers (tally._rebuild_scope,
  -- which tally.verify checks the same way): per-day tables from cutoff_day (local) or
  -- utc_cutoff_day (UTC) on, lifetime tables only for users whose whole history is retained.
  -- One user's scope is just that user (no scan of every user's keys).
  -- The billing period containing the first rebuilt day (straddle_start) starts
  -- before it. When the rollups already have that period (same bounds as before)
  -- it keeps its row; when they do not (the anchor or zone changed), it is counted
  -- from the retained log, i.e. only its days inside the log.
  perform 'PRAGMA:TABLE: _tally_rebuild_users (user_id text, tz text, anchor_day integer, cutoff_day date, utc_cutoff_day date, whole boolean, straddle_start date, straddle_kept boolean)';
  if not distributed then
    create temporary table _tally_rebuild_users on commit drop as
    select v.user_id, v.tz, v.anchor_day, v.cutoff_day, v.utc_cutoff_day, v.whole, v.straddle_start,
           v.straddle_start is not null
                and exists (select from tally.user_periods p
                             where p.user_id = v.user_id and p.period_start = v.straddle_start) as straddle_kept
      from (
        select sc.user_id, sc.tz, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day, sc.whole,
               case when sc.cutoff_day <> '-infinity' then tally._period_start(sc.cutoff_day, sc.anchor_day) end as straddle_start
          from tally._rebuild_scope(rebuild.user_id) as sc
      ) as v;
  else
    -- Citus refuses the correlated subquery above, and ships a statement that names one
    -- user's shard to that shard whole (function calls included): the scope first, then the
    -- user's period starts by themselves (one user here: the distributed path goes user by user).
    create temporary table _tally_rebuild_users on commit drop as
    select sc.user_id, sc.tz, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day, sc.whole,
           case when sc.cutoff_day <> '-infinity' then tally._period_start(sc.cutoff_day, sc.anchor_day) end as straddle_start,
           false as straddle_kept
      from tally._rebuild_scope(rebuild.user_id) as sc;
    kept_starts := array(select p.period_start from tally.user_periods p where p.user_id = rebuild.user_id);
    update pg_temp._tally_rebuild_users u
       set straddle_kept = u.straddle_start is not null and u.straddle_start = any (kept_starts);
  end if;
  create unique index on pg_temp._tally_rebuild_users (user_id);
  analyze pg_temp._tally_rebuild_users;

  -- One snapshot of what the derived tables must hold: the counted log rows (sign 1)
  -- minus what is still pending (sign -1): the next merge adds the pending deltas again.
  -- First and last times come from the log rows only (the merge's least/greatest of the
  -- pending ones changes nothing).
  perform 'PRAGMA:TABLE: _tally_rebuild_rows (user_id text, kind text, occurred_at timestamptz, attributes jsonb, events integer, failures integer, quantity bigint, duration_ms bigint, timed_events integer, cost numeric, billable boolean, is_use boolean, plan text, sign integer, local_at timestamp, day date, utc_day date, anchor_day integer, cutoff_day date, utc_cutoff_day date, whole boolean, straddle_start date, straddle_kept boolean)';
  create temporary table _tally_rebuild_rows on commit drop as
  select x.user_id, x.kind, x.occurred_at, x.attributes, x.events, x.failures, x.quantity, x.duration_ms,
         x.timed_events, x.cost, x.billable, x.is_use, x.plan, x.sign,
         x.occurred_at at time zone u.tz as local_at, (x.occurred_at at time zone u.tz)::date as day,
         (x.occurred_at at time zone 'UTC')::date as utc_day, u.anchor_day, u.cutoff_day, u.utc_cutoff_day, u.whole,
         u.straddle_start, u.straddle_kept
    from (
      select c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity, c.duration_ms,
             c.timed_events, c.cost, c.billable, c.is_use, c.plan, 1 as sign
        from tally._counted_events(rebuild.user_id) as c
      union all
      select p.user_id, p.kind, p.occurred_at, p.attributes, p.events, p.failures, p.quantity, p.duration_ms,
             p.timed_events, p.cost, p.billable, p.is_use, p.plan, -1
        from tally.pending_deltas p
       where rebuild.user_id is null or p.user_id = rebuild.user_id
    ) as x
    join pg_temp._tally_rebuild_users u on u.user_id = x.user_id;
  select count(*) into recomputed from pg_temp._tally_rebuild_rows r where r.sign = 1;

  -- ------------------------------------------------------------------------
  -- Lifetime, daily and billing-period rollups, through the merge's applier.
  -- ------------------------------------------------------------------------

  -- 1. Take the rebuilt days out of the daily rollups.
  delete from tally.user_daily d
   using pg_temp._tally_rebuild_users u
   where d.user_id = u.user_id and d.day >= u.cutoff_day
     and (rebuild.dimension is null or d.dimension = rebuild.dimension);

  -- 2. Billing periods that start inside the retained log (all-dimension rebuilds only).
  if dimension is null then
    delete from tally.user_periods p
     using pg_temp._tally_rebuild_users u
     where p.user_id = u.user_id and p.period_start >= u.cutoff_day;
  end if;

  -- 3. The batch: log rows minus pending deltas of the rebuilt days.
  insert into pg_temp._tally_merge
    (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms, timed_events, cost, billable,
     is_use, local_at, day, anchor_day, plan)
  select r.user_id, r.kind, r.occurred_at, r.attributes, r.sign * r.events, r.sign * r.failures, r.sign * r.quantity,
         r.sign * r.duration_ms, r.sign * r.timed_events, r.sign * r.cost,
         r.billable and (tally._period_start(r.day, r.anchor_day) >= r.cutoff_day
                         or (tally._period_start(r.day, r.anchor_day) = r.straddle_start and not r.straddle_kept)),
         r.is_use and r.sign = 1, r.local_at, r.day, r.anchor_day, r.plan
    from pg_temp._tally_rebuild_rows r
   where r.day >= r.cutoff_day;

  -- The applier also adds the batch to lifetime totals; step 4 replaces them.
  perform tally._apply_rollups(dimension);

  -- 4. Lifetime totals are the sums of the daily rollups, which keep all history
  --    (also the days older than the retained log).
  delete from tally.user_totals t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and (rebuild.dimension is null or t.dimension = rebuild.dimension);
  insert into tally.user_totals
    (user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
  select d.user_id, d.dimension, d.value, sum(d.events), sum(d.failures), sum(d.quantity), sum(d.duration_ms),
         sum(d.timed_events), sum(d.cost), min(d.first_at), max(d.last_at)
    from tally.user_daily d
    join pg_temp._tally_rebuild_users u on u.user_id = d.user_id
   where rebuild.dimension is null or d.dimension = rebuild.dimension
   group by d.user_id, d.dimension, d.value
   order by d.user_id, d.dimension, d.value;

  -- ------------------------------------------------------------------------
  -- The engagement and admin sources: recomputed here set-wise, by the rules of
  -- tally._apply_engagement and tally._apply_admin (signed: sums of sign * value, counts
  -- as sums of sign). No merge runs meanwhile, so plain inserts after the deletes.
  -- ------------------------------------------------------------------------

  -- Usage per UTC day, plan, dimension value and kind (the admin totals and leaderboards).
  delete from tally.user_daily_values t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day
     and (rebuild.dimension is null or t.dimension = rebuild.dimension);
  insert into tally.user_daily_values
    (user_id, day, plan, dimension, value, kind, events, succeeded, failures, quantity, duration_ms, timed_events, cost,
     billable_cost, first_at, last_at)
  select r.user_id, r.utc_day, coalesce(r.plan, ''), d.name, v.value, r.kind,
         sum(r.sign * r.events), coalesce(sum(r.sign) filter (where r.is_use), 0), sum(r.sign * r.failures),
         sum(r.sign * r.quantity), sum(r.sign * r.duration_ms), sum(r.sign * r.timed_events), sum(r.sign * r.cost),
         coalesce(sum(r.sign * r.cost) filter (where r.billable), 0),
         min(r.occurred_at) filter (where r.is_use and r.sign = 1),
         max(r.occurred_at) filter (where r.is_use and r.sign = 1)
    from pg_temp._tally_rebuild_rows r
   cross join tally.dimensions d
   cross join lateral (select tally._dimension_value(d.keys, r.kind, r.attributes, r.plan) as value) v
   where r.utc_day >= r.utc_cutoff_day and v.value is not null
     and (rebuild.dimension is null or d.name = rebuild.dimension)
   group by 1, 2, 3, 4, 5, 6;

  if dimension is not null then
    drop table pg_temp._tally_rebuild_rows;
    drop table pg_temp._tally_rebuild_users;
    return recomputed;  -- a dimension backfill leaves the other tables alone
  end if;

  -- Funnel steps: first and last succeeded original per kind, UTC day and plan.
  delete from tally.user_kind_days t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day;
  insert into tally.user_kind_days (user_id, kind, day, plan, first_at, last_at)
  select r.user_id, r.kind, r.utc_day, coalesce(r.plan, ''), min(r.occurred_at), max(r.occurred_at)
    from pg_temp._tally_rebuild_rows r
   where r.utc_day >= r.utc_cutoff_day and r.is_use and r.sign = 1
   group by 1, 2, 3, 4;

  -- Operational counters: attempts, durations of timed successes, net billable cost.
  delete from tally.user_daily_ops t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day;
  insert into tally.user_daily_ops
    (user_id, day, plan, kind, format, succeeded, failed, timed_events, duration_ms, billable_cost)
  select r.user_id, r.utc_day, coalesce(r.plan, ''), r.kind, coalesce(left(r.attributes ->> 'format', 64), ''),
         coalesce(sum(r.sign) filter (where r.is_use), 0), sum(r.sign * r.failures),
         coalesce(sum(r.sign) filter (where r.is_use and r.timed_events = 1), 0),
         coalesce(sum(r.sign * r.duration_ms) filter (where r.is_use and r.timed_events = 1), 0),
         coalesce(sum(r.sign * r.cost) filter (where r.billable), 0)
    from pg_temp._tally_rebuild_rows r
   where r.utc_day >= r.utc_cutoff_day and (r.is_use or r.failures <> 0 or (r.billable and r.cost <> 0))
   group by 1, 2, 3, 4, 5;

  -- Duration histograms of timed successes.
  delete from tally.user_daily_durations t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day;
  insert into tally.user_daily_durations (user_id, day, plan, kind, format, bucket, events)
  select r.user_id, r.utc_day, coalesce(r.plan, ''), r.kind, coalesce(left(r.attributes ->> 'format', 64), ''),
         tally._duration_bucket(r.duration_ms), sum(r.sign)
    from pg_temp._tally_rebuild_rows r
   where r.utc_day >= r.utc_cutoff_day and r.is_use and r.timed_events = 1
   group by 1, 2, 3, 4, 5, 6;

  -- Hour-of-week histogram in the user's current zone (lifetime: whole users only).
  delete from tally.user_hours h
   using pg_temp._tally_rebuild_users u
   where h.user_id = u.user_id and u.whole;
  insert into tally.user_hours (user_id, how, events, failures, quantity, duration_ms, cost)
  select r.user_id, ((extract(isodow from r.local_at)::integer - 1) * 24 + extract(hour from r.local_at)::integer)::smallint,
         sum(r.sign * r.events), sum(r.sign * r.failures), sum(r.sign * r.quantity), sum(r.sign * r.duration_ms),
         sum(r.sign * r.cost)
    from pg_temp._tally_rebuild_rows r
   where r.whole
   group by 1, 2;

  -- Sessions (lifetime: whole users only).
  delete from tally.user_sessions s
   using pg_temp._tally_rebuild_users u
   where s.user_id = u.user_id and u.whole;
  insert into tally.user_sessions (user_id, session_id, events, explicit_events, explicit_ms, first_at, last_end_at)
  select r.user_id, k.session_id, sum(r.sign * r.events),
         sum(case when r.kind = 'session' then r.sign * r.events else 0 end),
         sum(case when r.kind = 'session' then r.sign * r.duration_ms else 0 end),
         min(r.occurred_at) filter (where r.is_use and r.sign = 1),
         max(r.occurred_at + r.duration_ms * interval '1 millisecond') filter (where r.is_use and r.sign = 1)
    from pg_temp._tally_rebuild_rows r
   cross join lateral (select tally._session_key(r.kind, r.attributes, r.occurred_at) as session_id) k
   where r.whole and k.session_id is not null
   group by 1, 2;

  drop table pg_temp._tally_rebuild_rows;
  drop table pg_temp._tally_rebuild_users;
  return recomputed;
end
$$;

comment on function tally.rebuild(text, text) is
  'Rebuilds every table derived from the log for one user or all, from the retained log: lifetime, daily and billing-period rollups, usage per UTC day and dimension value, funnel days, operational counters, duration histograms, and (for users whose whole history is retained) the hour-of-week histogram and sessions; first reconciles the exactly-once keys (tally.rebuild_keys). With dimension: backfills that one dimension''s rollups only (e.g. after declare_dimension). Days older than the retained log keep their rows. Writers are not blocked; merges wait. On a distributed install (Citus) all users are rebuilt one by one in the one transaction. Returns the number of retained log rows it recomputed from.';

-- >>> functions/0441_counted_events.sql
-- The retained log rows that count, with their contributions (as tally.event_contributions): each row an exactly-once key names (same user, event_id and time), once.
-- Called by tally.verify and tally.rebuild, so that a row written past the insert trigger never counts twice.
create or replace function tally._counted_events(only_user text default null)
returns table (event_id text, user_id text, kind text, occurred_at timestamptz, attributes jsonb, events integer,
               failures integer, quantity bigint, duration_ms bigint, timed_events integer, cost numeric,
               billable boolean, is_use boolean, plan text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  -- The insert trigger keys every row it lets in, so a row without its key, or whose
  -- user's event_id is keyed to another time, was written past it (triggers disabled,
  -- session_replication_role = replica): the write path would have skipped it as a
  -- duplicate. Rows repeating the keyed (user, event_id, time) count once: the first
  -- in the order of their contents, so every caller picks the same one. Only the
  -- repeated ids are sorted; every other row passes through a hash anti-join.
  return query
  with keyed as materialized (
    select c.event_id, c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity,
           c.duration_ms, c.timed_events, c.cost, c.billable, c.is_use, c.plan
      from tally.event_contributions c
      join tally.event_keys k on k.user_id = c.user_id and k.event_id = c.event_id and k.occurred_at = c.occurred_at
     where only_user is null or c.user_id = only_user
  ), repeated as (
    select r.user_id, r.event_id from keyed r group by r.user_id, r.event_id having count(*) > 1
  )
  select r.* from keyed r
   where not exists (select from repeated d where d.user_id = r.user_id and d.event_id = r.event_id)
  union all
  (select distinct on (r.user_id, r.event_id) r.*
     from keyed r
    where exists (select from repeated d where d.user_id = r.user_id and d.event_id = r.event_id)
    order by r.user_id, r.event_id, r::text);
end
$$;

comment on function tally._counted_events(text) is
  'Contributions (as tally.event_contributions) of the retained log rows that count, for one user or all: each row named by its exactly-once key (user_id, event_id) and its occurred_at, once when the log repeats it; rows written past the insert trigger under a key they do not own are left out (internal; verify and rebuild recompute from it).';

-- >>> functions/0442_rebuild_users.sql
-- The users a full rebuild and verify cover: every user with a key, a pending delta or a row in any table derived from the log.
-- Called by tally._rebuild_scope (so by tally.rebuild and tally.verify) and by `pgtally rebuild`, which rebuilds them one by one.
create or replace function tally.rebuild_users()
returns table (user_id text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A row of a derived table for a user the log does not know (a hand edit) must be
  -- found and removed too, so every derived table is listed, not only the keys.
  -- (PL/pgSQL, not SQL: the tables it names are created after it in install order.)
  return query
  select k.user_id from tally.event_keys k
  union select p.user_id from tally.pending_deltas p
  union select t.user_id from tally.user_totals t
  union select d.user_id from tally.user_daily d
  union select p.user_id from tally.user_periods p
  union select s.user_id from tally.user_sessions s
  union select h.user_id from tally.user_hours h
  union select v.user_id from tally.user_daily_values v
  union select f.user_id from tally.user_kind_days f
  union select o.user_id from tally.user_daily_ops o
  union select d.user_id from tally.user_daily_durations d;
end
$$;

comment on function tally.rebuild_users() is
  'The users tally.rebuild() and tally.verify() cover: every user with an exactly-once key, a pending delta or a row in a table derived from the log (rollups, sessions, hours, admin sources). `pgtally rebuild` rebuilds them one transaction each.';

-- >>> functions/0443_rebuild_scope.sql
-- Per user (one or all): time zone, billing anchor and the part of the derived tables the retained log wholly covers.
-- Called by tally.rebuild and tally.verify, so that both rebuild and check exactly the same part.
create or replace function tally._rebuild_scope(only_user text default null)
returns table (user_id text, tz text, anchor_day integer, cutoff_day date, utc_cutoff_day date, whole boolean)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  since timestamptz;
  users text[];
begin
  -- Per-day tables are recomputed from the first day wholly inside the retained log:
  -- cutoff_day in the user's zone (user_daily, user_periods), utc_cutoff_day for the
  -- tables keyed by UTC day. Older days keep what the merges wrote.
  -- Lifetime tables (user_hours, user_sessions: a session may span any time) cannot be
  -- split by day: they are recomputed only for a user with no day before cutoff_day in
  -- the daily rollups or the pending deltas (whole). Once retention dropped part of a
  -- user's history, that user's lifetime tables keep what the merges wrote.
  if tally._is_distributed() then
    -- Citus refuses the correlated subqueries below (their outer side is a subquery, not a
    -- distributed table) and the join of the users' list with user_settings. Each table is
    -- read by itself instead (filtered by the one user, or grouped by user_id: pushed down
    -- to the shards) and the pieces are joined on the coordinator. The first rollup day and
    -- the first pending delta per user decide the same as the not-exists tests: the local
    -- day of the earliest delta is the earliest local day. The start of the retained log is
    -- read first: a query routed to one user's shard cannot read the coordinator's tables.
    since := tally._retained_since();
    users := case when only_user is not null then array[only_user]
                  else array(select x.user_id from tally.rebuild_users() x) end;
    return query
    with settings as materialized (
      select s.user_id, s.time_zone, s.subscription_anchor_day, s.billing_anchor_day
        from tally.user_settings s
       where only_user is null or s.user_id = only_user
    ), first_day as materialized (
      select d.user_id, min(d.day) as day
        from tally.user_daily d
       where only_user is null or d.user_id = only_user
       group by d.user_id
    ), first_pending as materialized (
      select p.user_id, min(p.occurred_at) as occurred_at
        from tally.pending_deltas p
       where only_user is null or p.user_id = only_user
       group by p.user_id
    ), w as (
      select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
             coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1) as anchor_day,  -- as tally._period_anchor
             r.since,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone 'UTC')::date + 1 end as utc_cutoff_day
        from unnest(users) as u (user_id)
       cross join (select since) as r
        left join settings s on s.user_id = u.user_id
    )
    select w.user_id, w.tz, w.anchor_day, w.cutoff_day, w.utc_cutoff_day,
           w.since = '-infinity'
             or (coalesce(fd.day >= w.cutoff_day, true)
                 and coalesce((fp.occurred_at at time zone w.tz)::date >= w.cutoff_day, true))
      from w
      left join first_day fd on fd.user_id = w.user_id
      left join first_pending fp on fp.user_id = w.user_id;
    return;
  end if;
  return query
  select w.user_id, w.tz, w.anchor_day, w.cutoff_day, w.utc_cutoff_day,
         w.since = '-infinity'
           or (not exists (select from tally.user_daily d where d.user_id = w.user_id and d.day < w.cutoff_day)
               and not exists (select from tally.pending_deltas p
                                where p.user_id = w.user_id and (p.occurred_at at time zone w.tz)::date < w.cutoff_day))
    from (
      select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
             coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1) as anchor_day,  -- as tally._period_anchor
             r.since,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone 'UTC')::date + 1 end as utc_cutoff_day
        from (select only_user as user_id where only_user is not null
              union all
              select x.user_id from tally.rebuild_users() x where only_user is null) as u
       cross join (select tally._retained_since() as since) as r
        left join tally.user_settings s on s.user_id = u.user_id
    ) as w;
end
$$;

comment on function tally._rebuild_scope(text) is
  'For one user or every user tally.rebuild_users() lists: time zone, billing anchor, the first local and the first UTC day wholly inside the retained log, and whether the user''s whole history is retained (then lifetime tables are rebuilt and verified too) (internal).';

-- >>> functions/0444_rebuild_keys.sql
-- Reconciles the exactly-once keys with the retained log: keys the rows that have none, and drops the keys
-- inside the retained log whose row is gone. Called by tally.rebuild and by `pgtally rebuild` (all users).
create or replace function tally.rebuild_keys(only_user text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  since   timestamptz;
  removed bigint := 0;
  added   bigint;
begin
  -- Which rows count depends on the keys: no merge or rebuild meanwhile.
  perform tally._lock('merge');
  since := tally._retained_since();

  -- A key inside the retained log whose row is gone (deleted past the refusal triggers, or a
  -- key written by hand) would skip a re-sent event forever while no total counts it. Keys
  -- older than the retained log stay: retention dropped their rows on purpose. The key
  -- leads with the user, so one user's keys are an index range.
  with gone as (
    delete from tally.event_keys k
     where (only_user is null or k.user_id = only_user)
       and k.occurred_at >= since
       and not exists (select from tally.usage_events e
                        where e.user_id = k.user_id and e.event_id = k.event_id and e.occurred_at = k.occurred_at)
    returning k.user_id, k.event_id
  ), unreversed as (
    delete from tally.reversals r
     where (only_user is null or r.user_id = only_user)
       and (r.user_id, r.event_id) in (select g.user_id, g.event_id from gone g)
  )
  select count(*) into removed from gone;

  -- A row without any key (inserted past the insert trigger) is keyed as the trigger would
  -- have done it: the first recorded row of the user's event_id wins; it counts from now on.
  with added_keys as (
    insert into tally.event_keys (user_id, event_id, occurred_at, correctable)
    select distinct on (e.user_id, e.event_id) e.user_id, e.event_id, e.occurred_at,
           e.status = 'succeeded' and e.corrects_event_id is null
      from tally.usage_events e
     where (only_user is null or e.user_id = only_user)
       and not exists (select from tally.event_keys k where k.user_id = e.user_id and k.event_id = e.event_id)
     order by e.user_id, e.event_id, e.recorded_at, e.occurred_at
    on conflict do nothing
    returning user_id, event_id, occurred_at
  ), reversed as (
    -- A keyed reversal also takes its original's reversal slot, as the trigger does.
    insert into tally.reversals (user_id, original_event_id, event_id)
    select e.user_id, e.corrects_event_id, e.event_id
      from added_keys a
      join tally.usage_events e on e.user_id = a.user_id and e.occurred_at = a.occurred_at and e.event_id = a.event_id
     where e.status = 'reversed'
    on conflict do nothing
  )
  select count(*) into added from added_keys;
  return removed + added;
end
$$;

comment on function tally.rebuild_keys(text) is
  'Reconciles tally.event_keys with the retained log: a log row without a key (written past the insert trigger) gets one, its first recorded row winning; a key inside the retained log whose row is gone is dropped, so the event can be recorded again. Returns the number of keys added and dropped. Holds the merge lock.';

-- >>> functions/0445_sync_billing_anchor.sql
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

-- >>> functions/0450_verify.sql
-- Compares every table derived from the log with a recomputation from the retained log, and the log with its keys; reports drift.
-- Called by DBAs, `pgtally verify` (exit code 1 on drift, with the command that repairs it) and the tests after every lifecycle operation.
create or replace function tally.verify(sample_size integer default 5)
returns table (check_name text, checked bigint, drifted bigint, sample text[])
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  since timestamptz := tally._retained_since();
begin
  if sample_size is null or sample_size < 0 then
    raise exception using errcode = 'PT011', column = 'sample_size', message = 'sample_size must be 0 or more';
  end if;

  -- ==========================================================================
  -- Every table derived from the log vs. the counted log rows, in one statement (one
  -- read of the log). Each expectation is plain SQL over tally._counted_events, written
  -- from the rules the merge appliers follow but sharing no code with them or with
  -- tally.rebuild; the actual side is the table plus the pending deltas (the merge adds
  -- them later). Only the part tally._rebuild_scope says the retained log wholly covers
  -- is compared: days from cutoff_day (local) or utc_cutoff_day (UTC) on, and lifetime
  -- tables for users whose whole history is retained. A missing row and a row of zeros
  -- differ: both sides hold a row exactly when some event contributes to it.
  -- ==========================================================================
  return query
  with scope as materialized (
    select * from tally._rebuild_scope(null)
  ), counted as materialized (
    select c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity, c.duration_ms,
           c.timed_events, c.cost, c.billable, c.is_use, c.plan, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day,
           sc.whole, c.occurred_at at time zone sc.tz as local_at, (c.occurred_at at time zone sc.tz)::date as day,
           (c.occurred_at at time zone 'UTC')::date as utc_day
      from tally._counted_events(null) c
      join scope sc on sc.user_id = c.user_id
  ), pending as materialized (
    select p.user_id, p.kind, p.occurred_at, p.attributes, p.events, p.failures, p.quantity, p.duration_ms,
           p.timed_events, p.cost, p.billable, p.is_use, p.plan, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day,
           sc.whole, p.occurred_at at time zone sc.tz as local_at, (p.occurred_at at time zone sc.tz)::date as day,
           (p.occurred_at at time zone 'UTC')::date as utc_day
      from tally.pending_deltas p
      join scope sc on sc.user_id = p.user_id
  ),

  -- -------------------------------------------------------------- daily rollups (local days)
  daily_expected as (
    select c.user_id, d.name as dimension, c.day, v.value, sum(c.events) as events, sum(c.failures) as failures,
           sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.timed_events) as timed_events,
           sum(c.cost) as cost, min(c.occurred_at) filter (where c.is_use) as first_at,
           max(c.occurred_at) filter (where c.is_use) as last_at
      from counted c
     cross join tally.dimensions d
     cross join lateral (select tally._dimension_value(d.keys, c.kind, c.attributes, c.plan) as value) v
     where c.day >= c.cutoff_day and v.value is not null
     group by 1, 2, 3, 4
  ), daily_actual as (
    select x.user_id, x.dimension, x.day, x.value, sum(x.events) as events, sum(x.failures) as failures,
           sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms, sum(x.timed_events) as timed_events,
           sum(x.cost) as cost, min(x.first_at) as first_at, max(x.last_at) as last_at
      from (
        select t.user_id, t.dimension, t.day, t.value, t.events::numeric as events, t.failures::numeric as failures,
               t.quantity::numeric as quantity, t.duration_ms::numeric as duration_ms,
               t.timed_events::numeric as timed_events, t.cost, t.first_at, t.last_at
          from tally.user_daily t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.cutoff_day
        union all
        select p.user_id, d.name, p.day, v.value, p.events, p.failures, p.quantity, p.duration_ms, p.timed_events,
               p.cost, case when p.is_use then p.occurred_at end, case when p.is_use then p.occurred_at end
          from pending p
         cross join tally.dimensions d
         cross join lateral (select tally._dimension_value(d.keys, p.kind, p.attributes, p.plan) as value) v
         where p.day >= p.cutoff_day and v.value is not null
      ) as x
     group by 1, 2, 3, 4
  ), daily as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.dimension, a.dimension),
                  coalesce(e.day, a.day), coalesce(e.value, a.value)) as label,
           (e.events, e.failures, e.quantity, e.duration_ms, e.timed_events, e.cost, e.first_at, e.last_at)
             is distinct from (a.events, a.failures, a.quantity, a.duration_ms, a.timed_events, a.cost, a.first_at, a.last_at)
             as drift
      from daily_expected e
      full join daily_actual a using (user_id, dimension, day, value)
  ),

  -- -------------------------------------------------------------- billing periods (from the first rebuilt day)
  periods_expected as (
    select c.user_id, tally._period_start(c.day, c.anchor_day) as period_start, c.kind, sum(c.events) as events,
           sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.cost) as cost
      from counted c
     where c.billable
     group by 1, 2, 3
  ), periods_actual as (
    select x.user_id, x.period_start, x.kind, sum(x.events) as events, sum(x.quantity) as quantity,
           sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from (
        select t.user_id, t.period_start, t.kind, t.events::numeric as events, t.quantity::numeric as quantity,
               t.duration_ms::numeric as duration_ms, t.cost
          from tally.user_periods t
        union all
        select p.user_id, tally._period_start(p.day, p.anchor_day), p.kind, p.events, p.quantity, p.duration_ms, p.cost
          from pending p
         where p.billable
      ) as x
     group by 1, 2, 3
  ), periods as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.period_start, a.period_start),
                  coalesce(e.kind, a.kind)) as label,
           coalesce(e.period_start, a.period_start) as period_start,
           (e.events, e.quantity, e.duration_ms, e.cost) is distinct from (a.events, a.quantity, a.duration_ms, a.cost)
             as drift
      from periods_expected e
      full join periods_actual a using (user_id, period_start, kind)
  ),

  -- -------------------------------------------------------------- usage per UTC day, plan, dimension value and kind
  values_expected as (
    select c.user_id, c.utc_day as day, coalesce(c.plan, '') as plan, d.name as dimension, v.value, c.kind,
           sum(c.events) as events, count(*) filter (where c.is_use) as succeeded, sum(c.failures) as failures,
           sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.timed_events) as timed_events,
           sum(c.cost) as cost, coalesce(sum(c.cost) filter (where c.billable), 0) as billable_cost,
           min(c.occurred_at) filter (where c.is_use) as first_at, max(c.occurred_at) filter (where c.is_use) as last_at
      from counted c
     cross join tally.dimensions d
     cross join lateral (select tally._dimension_value(d.keys, c.kind, c.attributes, c.plan) as value) v
     where c.utc_day >= c.utc_cutoff_day and v.value is not null
     group by 1, 2, 3, 4, 5, 6
  ), values_actual as (
    select x.user_id, x.day, x.plan, x.dimension, x.value, x.kind, sum(x.events) as events, sum(x.succeeded) as succeeded,
           sum(x.failures) as failures, sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms,
           sum(x.timed_events) as timed_events, sum(x.cost) as cost, sum(x.billable_cost) as billable_cost,
           min(x.first_at) as first_at, max(x.last_at) as last_at
      from (
        select t.user_id, t.day, t.plan, t.dimension, t.value, t.kind, t.events::numeric as events,
               t.succeeded::numeric as succeeded, t.failures::numeric as failures, t.quantity, t.duration_ms,
               t.timed_events::numeric as timed_events, t.cost, t.billable_cost, t.first_at, t.last_at
          from tally.user_daily_values t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.utc_day, coalesce(p.plan, ''), d.name, v.value, p.kind, p.events,
               case when p.is_use then 1 else 0 end,
               p.failures, p.quantity, p.duration_ms, p.timed_events, p.cost, case when p.billable then p.cost else 0 end,
               case when p.is_use then p.occurred_at end, case when p.is_use then p.occurred_at end
          from pending p
         cross join tally.dimensions d
         cross join lateral (select tally._dimension_value(d.keys, p.kind, p.attributes, p.plan) as value) v
         where p.utc_day >= p.utc_cutoff_day and v.value is not null
      ) as x
     group by 1, 2, 3, 4, 5, 6
  ), daily_values as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.day, a.day), coalesce(e.plan, a.plan),
                  coalesce(e.dimension, a.dimension), coalesce(e.value, a.value), coalesce(e.kind, a.kind)) as label,
           (e.events, e.succeeded, e.failures, e.quantity, e.duration_ms, e.timed_events, e.cost, e.billable_cost,
            e.first_at, e.last_at)
             is distinct from (a.events, a.succeeded, a.failures, a.quantity, a.duration_ms, a.timed_events, a.cost,
                               a.billable_cost, a.first_at, a.last_at) as drift
      from values_expected e
      full join values_actual a using (user_id, day, plan, dimension, value, kind)
  ),

  -- -------------------------------------------------------------- funnel steps: first and last use per kind, UTC day, plan
  kind_days_expected as (
    select c.user_id, c.kind, c.utc_day as day, coalesce(c.plan, '') as plan, min(c.occurred_at) as first_at,
           max(c.occurred_at) as last_at
      from counted c
     where c.is_use and c.utc_day >= c.utc_cutoff_day
     group by 1, 2, 3, 4
  ), kind_days_actual as (
    select x.user_id, x.kind, x.day, x.plan, min(x.first_at) as first_at, max(x.last_at) as last_at
      from (
        select t.user_id, t.kind, t.day, t.plan, t.first_at, t.last_at
          from tally.user_kind_days t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.kind, p.utc_day, coalesce(p.plan, ''), p.occurred_at, p.occurred_at
          from pending p
         where p.is_use and p.utc_day >= p.utc_cutoff_day
      ) as x
     group by 1, 2, 3, 4
  ), kind_days as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.kind, a.kind), coalesce(e.day, a.day),
                  coalesce(e.plan, a.plan)) as label,
           (e.first_at, e.last_at) is distinct from (a.first_at, a.last_at) as drift
      from kind_days_expected e
      full join kind_days_actual a using (user_id, kind, day, plan)
  ),

  -- -------------------------------------------------------------- operational counters per UTC day, plan, kind, format
  ops_expected as (
    select c.user_id, c.utc_day as day, coalesce(c.plan, '') as plan, c.kind,
           coalesce(left(c.attributes ->> 'format', 64), '') as format,
           count(*) filter (where c.is_use)::numeric as succeeded, sum(c.failures)::numeric as failed,
           count(*) filter (where c.is_use and c.timed_events = 1)::numeric as timed_events,
           coalesce(sum(c.duration_ms) filter (where c.is_use and c.timed_events = 1), 0) as duration_ms,
           coalesce(sum(c.cost) filter (where c.billable), 0) as billable_cost
      from counted c
     where c.utc_day >= c.utc_cutoff_day and (c.is_use or c.failures <> 0 or (c.billable and c.cost <> 0))
     group by 1, 2, 3, 4, 5
  ), ops_actual as (
    select x.user_id, x.day, x.plan, x.kind, x.format, sum(x.succeeded) as succeeded, sum(x.failed) as failed,
           sum(x.timed_events) as timed_events, sum(x.duration_ms) as duration_ms, sum(x.billable_cost) as billable_cost
      from (
        select t.user_id, t.day, t.plan, t.kind, t.format, t.succeeded::numeric as succeeded,
               t.failed::numeric as failed, t.timed_events::numeric as timed_events, t.duration_ms, t.billable_cost
          from tally.user_daily_ops t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.utc_day, coalesce(p.plan, ''), p.kind, coalesce(left(p.attributes ->> 'format', 64), ''),
               case when p.is_use then 1 else 0 end, p.failures,
               case when p.is_use and p.timed_events = 1 then 1 else 0 end,
               case when p.is_use and p.timed_events = 1 then p.duration_ms else 0 end,
               case when p.billable then p.cost else 0 end
          from pending p
         where p.utc_day >= p.utc_cutoff_day and (p.is_use or p.failures <> 0 or (p.billable and p.cost <> 0))
      ) as x
     group by 1, 2, 3, 4, 5
  ), daily_ops as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.day, a.day), coalesce(e.plan, a.plan),
                  coalesce(e.kind, a.kind), coalesce(e.format, a.format)) as label,
           (e.succeeded, e.failed, e.timed_events, e.duration_ms, e.billable_cost)
             is distinct from (a.succeeded, a.failed, a.timed_events, a.duration_ms, a.billable_cost) as drift
      from ops_expected e
      full join ops_actual a using (user_id, day, plan, kind, format)
  ),

  -- -------------------------------------------------------------- duration histograms of timed successes
  durations_expected as (
    select c.user_id, c.utc_day as day, coalesce(c.plan, '') as plan, c.kind,
           coalesce(left(c.attributes ->> 'format', 64), '') as format, tally._duration_bucket(c.duration_ms) as bucket,
           count(*)::numeric as events
      from counted c
     where c.utc_day >= c.utc_cutoff_day and c.is_use and c.timed_events = 1
     group by 1, 2, 3, 4, 5, 6
  ), durations_actual as (
    select x.user_id, x.day, x.plan, x.kind, x.format, x.bucket, sum(x.events) as events
      from (
        select t.user_id, t.day, t.plan, t.kind, t.format, t.bucket, t.events
          from tally.user_daily_durations t join scope sc on sc.user_id = t.user_id
         where t.day >= sc.utc_cutoff_day
        union all
        select p.user_id, p.utc_day, coalesce(p.plan, ''), p.kind, coalesce(left(p.attributes ->> 'format', 64), ''),
               tally._duration_bucket(p.duration_ms), 1
          from pending p
         where p.utc_day >= p.utc_cutoff_day and p.is_use and p.timed_events = 1
      ) as x
     group by 1, 2, 3, 4, 5, 6
  ), durations as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s/%s/%s/%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.day, a.day), coalesce(e.plan, a.plan),
                  coalesce(e.kind, a.kind), coalesce(e.format, a.format), coalesce(e.bucket, a.bucket)) as label,
           e.events is distinct from a.events as drift
      from durations_expected e
      full join durations_actual a using (user_id, day, plan, kind, format, bucket)
  ),

  -- -------------------------------------------------------------- hour-of-week histogram (lifetime, user's zone)
  hours_expected as (
    select c.user_id, ((extract(isodow from c.local_at)::integer - 1) * 24 + extract(hour from c.local_at)::integer) as how,
           sum(c.events) as events, sum(c.failures) as failures, sum(c.quantity) as quantity,
           sum(c.duration_ms) as duration_ms, sum(c.cost) as cost
      from counted c
     where c.whole
     group by 1, 2
  ), hours_actual as (
    select x.user_id, x.how, sum(x.events) as events, sum(x.failures) as failures, sum(x.quantity) as quantity,
           sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from (
        select t.user_id, t.how::integer as how, t.events::numeric as events, t.failures::numeric as failures,
               t.quantity, t.duration_ms, t.cost
          from tally.user_hours t join scope sc on sc.user_id = t.user_id
         where sc.whole
        union all
        select p.user_id, (extract(isodow from p.local_at)::integer - 1) * 24 + extract(hour from p.local_at)::integer,
               p.events, p.failures, p.quantity, p.duration_ms, p.cost
          from pending p
         where p.whole
      ) as x
     group by 1, 2
  ), hours as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.how, a.how)) as label,
           (e.events, e.failures, e.quantity, e.duration_ms, e.cost)
             is distinct from (a.events, a.failures, a.quantity, a.duration_ms, a.cost) as drift
      from hours_expected e
      full join hours_actual a using (user_id, how)
  ),

  -- -------------------------------------------------------------- sessions (lifetime)
  sessions_expected as (
    select c.user_id, k.session_id, sum(c.events) as events,
           sum(c.events) filter (where c.kind = 'session') as explicit_events,
           sum(c.duration_ms) filter (where c.kind = 'session') as explicit_ms,
           min(c.occurred_at) filter (where c.is_use) as first_at,
           max(c.occurred_at + c.duration_ms * interval '1 millisecond') filter (where c.is_use) as last_end_at
      from counted c
     cross join lateral (select tally._session_key(c.kind, c.attributes, c.occurred_at) as session_id) k
     where c.whole and k.session_id is not null
     group by 1, 2
  ), sessions_actual as (
    select x.user_id, x.session_id, sum(x.events) as events, sum(x.explicit_events) as explicit_events,
           sum(x.explicit_ms) as explicit_ms, min(x.first_at) as first_at, max(x.last_end_at) as last_end_at
      from (
        select t.user_id, t.session_id, t.events::numeric as events, t.explicit_events::numeric as explicit_events,
               t.explicit_ms, t.first_at, t.last_end_at
          from tally.user_sessions t join scope sc on sc.user_id = t.user_id
         where sc.whole
        union all
        select p.user_id, k.session_id, p.events, case when p.kind = 'session' then p.events else 0 end,
               case when p.kind = 'session' then p.duration_ms else 0 end,
               case when p.is_use then p.occurred_at end,
               case when p.is_use then p.occurred_at + p.duration_ms * interval '1 millisecond' end
          from pending p
         cross join lateral (select tally._session_key(p.kind, p.attributes, p.occurred_at) as session_id) k
         where p.whole and k.session_id is not null
      ) as x
     group by 1, 2
  ), sessions as (
    select coalesce(e.user_id, a.user_id) as user_id,
           format('%s/%s', coalesce(e.user_id, a.user_id), coalesce(e.session_id, a.session_id)) as label,
           (e.events, coalesce(e.explicit_events, 0), coalesce(e.explicit_ms, 0), e.first_at, e.last_end_at)
             is distinct from (a.events, a.explicit_events, a.explicit_ms, a.first_at, a.last_end_at) as drift
      from sessions_expected e
      full join sessions_actual a using (user_id, session_id)
  )
  select 'daily rollups vs log'::text, count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from daily c
  union all
  select 'billing periods vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from periods c join scope sc on sc.user_id = c.user_id
   where c.period_start >= sc.cutoff_day
  union all
  select 'user_daily_values vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from daily_values c
  union all
  select 'user_kind_days vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from kind_days c
  union all
  select 'user_daily_ops vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from daily_ops c
  union all
  select 'user_daily_durations vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from durations c
  union all
  select 'user_hours vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from hours c
  union all
  select 'user_sessions vs log', count(*), count(*) filter (where c.drift),
         (array_agg(c.label order by c.label) filter (where c.drift))[1:sample_size]
    from sessions c;

  -- lifetime: every lifetime total equals the sum of its daily rollups (this also covers
  -- history older than the retained log), and first/last use match the daily rows.
  return query
  with sums as (
    select d.user_id, d.dimension, d.value, sum(d.events) as events, sum(d.failures) as failures,
           sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms, sum(d.timed_events) as timed_events,
           sum(d.cost) as cost, min(d.first_at) as first_at, max(d.last_at) as last_at
      from tally.user_daily d
     group by 1, 2, 3
  ), compared as (
    select coalesce(t.user_id, s.user_id) as user_id, coalesce(t.dimension, s.dimension) as dimension,
           coalesce(t.value, s.value) as value,
           (t.events, t.failures, t.quantity, t.duration_ms, t.timed_events, t.cost, t.first_at, t.last_at)
             is distinct from (s.events, s.failures, s.quantity, s.duration_ms, s.timed_events, s.cost, s.first_at, s.last_at)
             as drift
      from tally.user_totals t
      full join sums s using (user_id, dimension, value)
  )
  select 'lifetime totals vs daily rollups'::text, count(*), count(*) filter (where c.drift),
         (array_agg(format('%s/%s/%s', c.user_id, c.dimension, c.value) order by c.user_id, c.dimension, c.value)
            filter (where c.drift))[1:sample_size]
    from compared c;

  -- ==========================================================================
  -- The log vs. its exactly-once keys (samples are event ids).
  -- ==========================================================================
  return query
  with log_rows as materialized (
    select e.user_id, e.event_id, k.event_id is not null as keyed,
           coalesce(k.occurred_at = e.occurred_at, false) as named, k.occurred_at as key_at
      from tally.usage_events e
      left join tally.event_keys k on k.user_id = e.user_id and k.event_id = e.event_id
  ), per_key as (
    select r.user_id, r.event_id, count(*) filter (where r.named) as named,
           count(*) filter (where not r.named) as others, min(r.key_at) as key_at
      from log_rows r
     where r.keyed
     group by r.user_id, r.event_id
  ), repeated as (
    -- Rows the write path would have skipped as duplicates (they were written past the
    -- insert trigger): more than one row named by a key, and rows under a key that names
    -- another time, unless that key's own row is gone from the retained log (then a
    -- rebuild re-keys the first of them).
    select p.event_id,
           case when p.named = 0 and p.key_at >= since then greatest(p.others - 1, 0)
                else p.others + greatest(p.named - 1, 0) end as extra
      from per_key p
  ), orphans as (
    select k.event_id,
           not exists (select from per_key p
                        where p.user_id = k.user_id and p.event_id = k.event_id and p.named > 0) as gone
      from tally.event_keys k
     where k.occurred_at >= since
  )
  -- Every retained log row has a key (a row without one was written past the insert trigger).
  select 'log rows vs exactly-once keys'::text, count(*), count(*) filter (where not r.keyed),
         (array_agg(r.event_id order by r.event_id) filter (where not r.keyed))[1:sample_size]
    from log_rows r
  union all
  -- Every key inside the retained log has its row.
  select 'exactly-once keys vs log rows', count(*), count(*) filter (where o.gone),
         (array_agg(o.event_id::text order by o.event_id) filter (where o.gone))[1:sample_size]
    from orphans o
  union all
  -- No user's event_id is in the log twice.
  select 'duplicate log rows', count(*), coalesce(sum(x.extra), 0)::bigint,
         (array_agg(x.event_id order by x.event_id) filter (where x.extra > 0))[1:sample_size]
    from repeated x;
end
$$;

comment on function tally.verify(integer) is
  'Recomputes every table derived from the log (rollups, usage per UTC day and value, funnel days, operational counters, duration histograms, hour-of-week histogram, sessions) from the retained log, compares the log with its exactly-once keys, and reports per check how many keys were compared, how many drifted and a sample of drifted keys (user first, then the table''s key; event ids for the key checks). All drifted = 0 means the aggregates are exact. docs/operations.md says which command repairs each check.';

-- >>> functions/0500_set_user_settings.sql
-- Sets a user's time zone and billing anchor day (upsert); validates both and re-buckets the user's retained rollups when either changes.
-- Called by application backends when a user changes preferences.
create or replace function tally.set_user_settings(user_id text, time_zone text default 'UTC', billing_anchor_day integer default 1)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  old_tz     text;
  old_anchor integer;
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT001', column = 'user_id', message = 'user_id is required';
  elsif not tally._is_valid_time_zone(time_zone) then
    raise exception using errcode = 'PT011', column = 'time_zone',
      message = format('time_zone %L is not a time zone PostgreSQL knows', time_zone);
  elsif billing_anchor_day is null or billing_anchor_day not between 1 and 28 then
    raise exception using errcode = 'PT011', column = 'billing_anchor_day',
      message = format('billing_anchor_day must be between 1 and 28 (got %s)', coalesce(billing_anchor_day::text, 'null'));
  end if;
  -- One change of a user's billing settings or subscriptions at a time.
  perform tally._lock_user(set_user_settings.user_id, 'subscription');
  old_tz := tally._user_time_zone(set_user_settings.user_id);
  old_anchor := tally._period_anchor(set_user_settings.user_id);
  insert into tally.user_settings as s (user_id, time_zone, billing_anchor_day)
  values (set_user_settings.user_id, set_user_settings.time_zone, set_user_settings.billing_anchor_day)
  on conflict on constraint user_settings_pkey do update
    set time_zone = excluded.time_zone, billing_anchor_day = excluded.billing_anchor_day,
        updated_at = excluded.updated_at;  -- the default now(): Citus allows no volatile call here
  -- Local days and the open billing period must be exact at commit, not after the next rebuild.
  perform tally._sync_billing_anchor(set_user_settings.user_id, old_tz, old_anchor);
end
$$;

comment on function tally.set_user_settings(text, text, integer) is
  'Sets a user''s time zone and billing anchor day (1-28; a running subscription''s start day takes precedence). When the zone or the effective anchor changes, the user''s rollups are rebuilt from the retained log in the same transaction (merges wait for its commit); days and billing periods older than the retained log keep their old buckets.';

-- >>> functions/0505_period_anchor.sql
-- The day of month a user's billing periods start on: the running subscription's start day, else the billing_anchor_day setting, else 1.
-- Called by every billing-period read (period_totals, check_quota, quota_forecast, summary_card); the merge and the rebuild join the same columns.
create or replace function tally._period_anchor(user_id text)
returns integer
language plpgsql
stable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select coalesce((select coalesce(s.subscription_anchor_day, s.billing_anchor_day)::integer
                     from tally.user_settings s
                    where s.user_id = _period_anchor.user_id), 1)
  );
end
$$;

comment on function tally._period_anchor(text) is
  'Effective billing anchor of a user (1-31): the day of month the running subscription started (local time), else the billing_anchor_day setting, else 1 (internal).';

-- >>> functions/0510_declare_dimension.sql
-- Declares (or re-declares) a dimension from attribute keys, without writing SQL.
-- Called by product code or `pgtally`; history is backfilled by tally.rebuild.
create or replace function tally.declare_dimension(name text, keys text[], description text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if name is null or name !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception using errcode = 'PT011', column = 'name',
      message = format('dimension name %L must be a lower-case identifier (a-z, 0-9, _)', name);
  elsif keys is null or cardinality(keys) not between 1 and 4 or array_position(keys, null) is not null then
    raise exception using errcode = 'PT011', column = 'keys', message = 'a dimension takes 1 to 4 non-null attribute keys';
  end if;
  insert into tally.dimensions as d (name, keys, description)
  values (declare_dimension.name, declare_dimension.keys, declare_dimension.description)
  on conflict on constraint dimensions_pkey do update set keys = excluded.keys, description = excluded.description;
end
$$;

comment on function tally.declare_dimension(text, text[], text) is
  'Declares a dimension whose value is the event attributes named by keys joined by ''/'' (key ''kind'' = the kind column). New events count at once; run tally.rebuild to backfill history.';

-- >>> functions/0515_declare_kind.sql
-- Declares a kind of usage or changes its declaration: unit, display name, audio or not, featured dimension.
-- Called by operators (SQL or `pgtally kind declare`); a new kind is one call, no code.
create or replace function tally.declare_kind(kind text, unit text, display_name text default null,
                                              audio boolean default false, featured_dimension text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if kind is null or kind = '' or length(kind) > 64 then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required (at most 64 characters)';
  elsif unit is null or unit !~ '^[a-z][a-z0-9_ ]{0,31}$' then
    raise exception using errcode = 'PT011', column = 'unit',
      message = format('unit %L must be a lower-case word of at most 32 characters (characters, pages, tokens, ...)', unit);
  elsif display_name is not null and (display_name = '' or length(display_name) > 80) then
    raise exception using errcode = 'PT011', column = 'display_name', message = 'display_name must have 1 to 80 characters';
  elsif audio is null then
    raise exception using errcode = 'PT011', column = 'audio', message = 'audio must be true or false';
  elsif featured_dimension is not null
        and not exists (select from tally.dimensions d where d.name = declare_kind.featured_dimension) then
    raise exception using errcode = 'PT011', column = 'featured_dimension',
      message = format('dimension %L is not declared', featured_dimension), hint = 'Declare it with tally.declare_dimension.';
  end if;
  insert into tally.kinds as k (kind, unit, display_name, audio, featured_dimension)
  values (declare_kind.kind, declare_kind.unit, coalesce(declare_kind.display_name, declare_kind.kind),
          declare_kind.audio, declare_kind.featured_dimension)
  on conflict on constraint kinds_pkey do update
    set unit = excluded.unit, display_name = excluded.display_name, audio = excluded.audio,
        featured_dimension = excluded.featured_dimension, declared_at = excluded.declared_at;  -- the default now(), as Citus requires
end
$$;

comment on function tally.declare_kind(text, text, text, boolean, text) is
  'Declares a kind (or changes it): the unit its quantity counts in, a display name (default: the kind), whether its duration is audio, and the dimension its summary card features. Reads apply it at once; nothing is stored per event.';

-- The unit of a kind's quantity: the declared one, else a unit of its own (the kind itself).
-- Called by every read that adds quantities of several kinds.
create or replace function tally._kind_unit(kind text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select k.unit from tally.kinds k where k.kind = _kind_unit.kind), _kind_unit.kind)
$$;

comment on function tally._kind_unit(text) is
  'Unit of a kind''s quantity: the declared unit, or the kind itself for a kind never declared (so it adds to no other kind). Internal.';

-- >>> functions/0600_check_dimension.sql
-- Returns the keys of a declared dimension or raises PT010 naming it.
-- Called by every read function that takes a dimension name.
create or replace function tally._dimension_keys(dimension text)
returns text[]
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  found_keys text[];
begin
  select d.keys into found_keys from tally.dimensions d where d.name = dimension;
  if found_keys is null then
    raise exception using errcode = 'PT010', column = 'dimension',
      message = format('dimension %L is not declared', dimension),
      hint = 'Declared dimensions are listed in tally.dimensions; add one with tally.declare_dimension.';
  end if;
  return found_keys;
end
$$;

comment on function tally._dimension_keys(text) is
  'Keys of a declared dimension; raises PT010 when the dimension is not declared (internal).';

-- >>> functions/0610_lifetime_totals.sql
-- Lifetime totals of one user per value of one dimension: merged rollups plus pending deltas.
-- Called by application backends (account pages) and the Python client's lifetime_totals().
create or replace function tally.lifetime_totals(user_id text, dimension text)
returns table (
  value       text,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  first_at    timestamptz,
  last_at     timestamptz,
  failures    bigint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  -- One statement, one snapshot: a delta is either still pending or already merged.
  return query
  -- A duration is known only when some event behind it had one (NULL duration_ms = unknown): no timed
  -- event and no amount of duration (an amendment may add one) means unknown.
  select x.value, sum(x.events)::bigint, sum(x.quantity),
         case when sum(x.timed_events) <> 0 or sum(x.duration_ms) <> 0 then sum(x.duration_ms) end, sum(x.cost),
         min(x.first_at), max(x.last_at), sum(x.failures)::bigint
    from (
      select t.value, t.events, t.quantity, t.duration_ms, t.timed_events, t.cost, t.first_at, t.last_at, t.failures
        from tally.user_totals t
       where t.user_id = lifetime_totals.user_id and t.dimension = lifetime_totals.dimension
      union all
      select tally._dimension_value(keys, p.kind, p.attributes, p.plan), p.events, p.quantity, p.duration_ms, p.timed_events, p.cost,
             case when p.is_use then p.occurred_at end, case when p.is_use then p.occurred_at end, p.failures
        from tally.pending_deltas p
       where p.user_id = lifetime_totals.user_id
    ) as x
   where x.value is not null
   group by x.value
   order by sum(x.quantity) desc, x.value;
end
$$;

comment on function tally.lifetime_totals(text, text) is
  'Lifetime totals of a user per value of a declared dimension (events, quantity, duration_ms, cost, first_at, last_at, failures), exact at commit; duration_ms is NULL when no event behind it had a duration (unknown).';

-- >>> functions/0612_mixed_units.sql
-- Whether a user's quantities span several units (kinds whose non-zero quantities count in different units).
-- Called by the reads that add quantities over all kinds: they answer NULL then, never a sum in no unit.
create or replace function tally._mixed_units(user_id text)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select count(distinct tally._kind_unit(t.value)) > 1
    from tally.lifetime_totals(_mixed_units.user_id, 'kind') t
   where t.quantity <> 0
$$;

comment on function tally._mixed_units(text) is
  'True when the user''s kinds with a non-zero quantity count in more than one unit: reads over all kinds then give a NULL quantity (internal).';

-- >>> functions/0620_daily_totals.sql
-- Daily totals of one user per local day and dimension value in a range of local days.
-- Called by application backends (trend charts) and the Python client's daily_totals().
create or replace function tally.daily_totals(user_id text, dimension text, from_day date, to_day date)
returns table (
  day         date,
  value       text,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  failures    bigint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  if from_day is null or to_day is null or to_day < from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day (got %s .. %s)', coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  end if;
  return query
  select x.day, x.value, sum(x.events)::bigint, sum(x.quantity), sum(x.duration_ms), sum(x.cost),
         sum(x.failures)::bigint
    from (
      select t.day, t.value, t.events, t.quantity, t.duration_ms, t.cost, t.failures
        from tally.user_daily t
       where t.user_id = daily_totals.user_id and t.dimension = daily_totals.dimension
         and t.day between from_day and to_day
      union all
      select p.day, p.value, p.events, p.quantity, p.duration_ms, p.cost, p.failures
        from (
          select (q.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date as day,
                 tally._dimension_value(keys, q.kind, q.attributes, q.plan) as value,
                 q.events, q.quantity, q.duration_ms, q.cost, q.failures
            from tally.pending_deltas q
            left join tally.user_settings s on s.user_id = q.user_id
           where q.user_id = daily_totals.user_id
        ) as p
       where p.day between from_day and to_day
    ) as x
   where x.value is not null
   group by x.day, x.value
   order by x.day, x.value;
end
$$;

comment on function tally.daily_totals(text, text, date, date) is
  'Totals of a user per local day (user''s time zone) and value of a declared dimension, for days from_day..to_day with activity; exact at commit.';

-- >>> functions/0630_period_totals.sql
-- Billing-period counters of one user per kind for the period containing a moment (default now).
-- Called by quota checks and usage pages; billable, succeeded usage only.
create or replace function tally.period_totals(user_id text, at timestamptz default now())
returns table (
  period_start date,
  period_end   date,
  kind         text,
  events       bigint,
  quantity     numeric,
  duration_ms  numeric,
  cost         numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Read before the query: on Citus it runs on the user's shard, where it may not call
  -- functions that read other distributed tables.
  user_tz     text := tally._user_time_zone(period_totals.user_id);
  user_anchor integer := tally._period_anchor(period_totals.user_id);
begin
  return query
  with settings as (
    select user_tz as tz, user_anchor as anchor
  ), bounds as (
    select st.tz, st.anchor,
           tally._period_start((period_totals.at at time zone st.tz)::date, st.anchor) as p_start
      from settings st
  )
  select b.p_start, tally._period_end(b.p_start, b.anchor), x.kind,
         sum(x.events)::bigint, sum(x.quantity), sum(x.duration_ms), sum(x.cost)
    from bounds b
    cross join lateral (
      select t.kind, t.events, t.quantity, t.duration_ms, t.cost
        from tally.user_periods t
       where t.user_id = period_totals.user_id and t.period_start = b.p_start
      union all
      select q.kind, q.events, q.quantity, q.duration_ms, q.cost
        from tally.pending_deltas q
       where q.user_id = period_totals.user_id and q.billable
         and tally._period_start((q.occurred_at at time zone b.tz)::date, b.anchor) = b.p_start
    ) as x
   group by b.p_start, b.anchor, x.kind
   order by x.kind;
end
$$;

comment on function tally.period_totals(text, timestamptz) is
  'Billing-period counters of a user per kind (billable, succeeded usage) for the period containing at; a new period starts at zero without any reset. Periods start on the running subscription''s day of month, else on the billing_anchor_day setting (on the last day of shorter months).';

-- >>> functions/0700_user_time_zone.sql
-- The time zone a user's local days are counted in (tally.user_settings, default UTC).
-- Called by the user-facing reads (card, history, comparisons, patterns, forecast, insights, ...) to find the user's "today".
create or replace function tally._user_time_zone(user_id text)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select coalesce((select s.time_zone from tally.user_settings s where s.user_id = _user_time_zone.user_id), 'UTC')
  );
end
$$;

comment on function tally._user_time_zone(text) is
  'Time zone of a user (tally.user_settings), UTC when the user has no settings (internal).';

-- >>> functions/0701_session_key.sql
-- The session an event belongs to: attributes.session_id, else for a session-kind event its own key from occurred_at.
-- Called by the engagement applier and by tally.engagement_profile (pending deltas); NULL for events outside sessions.
create or replace function tally._session_key(kind text, attributes jsonb, occurred_at timestamptz)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- Epoch seconds, not timestamptz text: the key must not depend on the session's TimeZone or DateStyle.
  -- A reversal copies its original's occurred_at and attributes, so it lands on the same key.
  select coalesce(case when length(attributes ->> 'session_id') > 200 then tally._bounded_key(attributes ->> 'session_id')
                       else nullif(attributes ->> 'session_id', '') end,
                  case when kind = 'session' then 'at:' || extract(epoch from occurred_at)::text end)
$$;

comment on function tally._session_key(text, jsonb, timestamptz) is
  'Session key of an event: attributes.session_id (over 200 characters shortened by tally._bounded_key), or ''at:<epoch>'' for a session-kind event without one; NULL otherwise (internal).';

-- >>> functions/0702_months_started.sql
-- Number of billing months that start in [from_at, to_at): k >= 0 with from_at + k months < to_at (local timestamps).
-- Called by tally.subscription_summary (months subscribed and revenue).
create or replace function tally._months_started(from_at timestamp, to_at timestamp)
returns integer
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case
    when to_at is null or from_at is null or to_at <= from_at then 0
    else x.d + case when from_at + make_interval(months => x.d) < to_at then 1 else 0 end
  end
    from (select ((extract(year from to_at) - extract(year from from_at)) * 12
                  + extract(month from to_at) - extract(month from from_at))::integer as d) as x
$$;

comment on function tally._months_started(timestamp, timestamp) is
  'How many monthly billing cycles begin in [from_at, to_at) when the first begins at from_at (month arithmetic clamps to month ends) (internal).';

-- >>> functions/0703_duration_text.sql
-- A duration for people, like the client's human_duration: '14 h 12 min', '3 min 05 s', '42 s'.
-- Called by tally.usage_insights.
create or replace function tally._duration_text(ms numeric)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- Integer arithmetic on numeric, never through interval: a summed duration has no upper bound.
  select case
    when ms is null then 'unknown'
    when s >= 3600 then format('%s h %s min', div(s, 3600), lpad(div(mod(s, 3600), 60)::text, 2, '0'))
    when s >= 60 then format('%s min %s s', div(s, 60), lpad(mod(s, 60)::text, 2, '0'))
    else format('%s s', s)
  end
    from (select round(ms / 1000) as s) as x
$$;

comment on function tally._duration_text(numeric) is
  'Duration in milliseconds as text for people (''14 h 12 min'', ''3 min 05 s'', ''42 s''); exact for any numeric sum (internal).';

-- >>> functions/0704_range_days.sql
-- Resolves a history range ('7d', '30d', '3m', '12m', any 'N[dwmy]', or custom from/to) into local days, raising PT011 when invalid.
-- Called by tally.usage_history and tally.usage_peak.
create or replace function tally._range_days(range text, from_day date, to_day date, today date,
                                             out first_day date, out last_day date)
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  m text[];
  n integer;
begin
  if from_day is not null or to_day is not null or range = 'custom' then
    if from_day is null or to_day is null or to_day < from_day then
      raise exception using errcode = 'PT011', column = 'to_day',
        message = format('a custom range needs from_day <= to_day (got %s .. %s)',
                         coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
    end if;
    first_day := from_day;
    last_day := to_day;
  else
    m := regexp_match(coalesce(range, ''), '^([1-9][0-9]{0,3})([dwmy])$');
    if m is null then
      raise exception using errcode = 'PT011', column = 'range',
        message = format('range %L is not known: use 7d, 30d, 3m, 12m (any N followed by d, w, m or y) or custom with from_day and to_day', range);
    end if;
    n := m[1]::integer;
    last_day := today;
    first_day := case m[2]
      when 'd' then today - (n - 1)
      when 'w' then date_trunc('week', today::timestamp)::date - 7 * (n - 1)
      when 'm' then (date_trunc('month', today::timestamp) - make_interval(months => n - 1))::date
      else (date_trunc('year', today::timestamp) - make_interval(years => n - 1))::date
    end;
  end if;
  if last_day - first_day > 3660 then
    raise exception using errcode = 'PT011', column = 'range',
      message = format('range %s .. %s is longer than 3660 days', first_day, last_day);
  end if;
end
$$;

comment on function tally._range_days(text, date, date, date) is
  'First and last local day of a history range: Nd = N days ending today, Nw/Nm/Ny = N calendar weeks (Monday first)/months/years ending with the current one, or custom from_day..to_day; PT011 when invalid (internal).';

-- >>> functions/0705_metric_check.sql
-- Checks a metric name (events, quantity, duration_ms, cost) and returns it, raising PT011 naming the field otherwise.
-- Called by the comparison, peak, anomaly and pattern reads that take a metric.
create or replace function tally._check_metric(metric text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if metric is null or metric not in ('events', 'quantity', 'duration_ms', 'cost') then
    raise exception using errcode = 'PT011', column = 'metric',
      message = format('metric %L is not known: use events, quantity, duration_ms or cost', metric);
  end if;
  return metric;
end
$$;

comment on function tally._check_metric(text) is
  'Returns a valid metric name (events, quantity, duration_ms, cost); raises PT011 otherwise (internal).';

-- >>> functions/0710_upsert_plan.sql
-- Creates or updates a plan with its tier, monthly price and per-kind limits (the limits given replace the old ones).
-- Called by billing admins and the Python client's upsert_plan().
create or replace function tally.upsert_plan(plan text, tier integer, monthly_price numeric,
                                             limits jsonb default '{}', is_default boolean default false,
                                             description text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  bad text;
begin
  if plan is null or plan !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' then
    raise exception using errcode = 'PT011', column = 'plan',
      message = format('plan %L must be 1-63 characters of a-z, 0-9, _, . or - (starting with a letter or digit)', plan);
  elsif tier is null or tier < 0 then
    raise exception using errcode = 'PT011', column = 'tier',
      message = format('tier must be a non-negative integer (got %s)', coalesce(tier::text, 'null'));
  elsif monthly_price is null or monthly_price < 0 or monthly_price >= 1e12 then
    raise exception using errcode = 'PT011', column = 'monthly_price',
      message = format('monthly_price must be between 0 and 1e12 (got %s)', coalesce(monthly_price::text, 'null'));
  elsif limits is null or jsonb_typeof(limits) <> 'object' then
    raise exception using errcode = 'PT011', column = 'limits',
      message = 'limits must be a JSON object of kind -> non-negative integer (or null for unlimited)';
  end if;
  select l.key into bad
    from jsonb_each(limits) l
   where l.key = '' or length(l.key) > 64
      or not (jsonb_typeof(l.value) = 'null'
              or (jsonb_typeof(l.value) = 'number' and l.value::text ~ '^[0-9]{1,18}$'))
   limit 1;
  if found then
    raise exception using errcode = 'PT011', column = 'limits',
      message = format('limit of kind %L must be a non-negative integer or null (got %s)', bad, limits -> bad);
  end if;

  if is_default then
    update tally.plans p set is_default = false, updated_at = now()
     where p.is_default and p.plan <> upsert_plan.plan;
  end if;
  insert into tally.plans as p (plan, tier, monthly_price, is_default, description)
  values (upsert_plan.plan, upsert_plan.tier, upsert_plan.monthly_price, upsert_plan.is_default, upsert_plan.description)
  on conflict on constraint plans_pkey do update set
    tier = excluded.tier, monthly_price = excluded.monthly_price, is_default = excluded.is_default,
    description = excluded.description, updated_at = excluded.updated_at;  -- the default now(): Citus allows no volatile call here

  delete from tally.plan_limits l where l.plan = upsert_plan.plan;
  insert into tally.plan_limits (plan, kind, monthly_limit)
  select upsert_plan.plan, x.key, x.value::text::bigint
    from jsonb_each(limits) x
   where jsonb_typeof(x.value) = 'number'
   order by x.key;
end
$$;

comment on function tally.upsert_plan(text, integer, numeric, jsonb, boolean, text) is
  'Creates or replaces a plan: tier, monthly price, limits as {"kind": quantity per billing period} (null or absent = unlimited), and whether it is the default plan of users without a subscription. Running subscriptions keep the price they started with.';

-- >>> functions/0711_start_subscription.sql
-- Starts a user's subscription to a plan at a moment (default now), ending the running one there (a plan change).
-- Called by the billing backend (checkout completed, upgrade, downgrade) and the Python client's start_subscription().
create or replace function tally.start_subscription(user_id text, plan text, started_at timestamptz default now())
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  price      numeric;
  latest     record;
  old_tz     text;
  old_anchor integer;
begin
  if user_id is null or user_id = '' or length(user_id) > 200 then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'user_id is required (at most 200 characters)';
  elsif started_at is null or started_at < '2000-01-01 00:00:00+00' or started_at > statement_timestamp() + interval '1 day' then
    raise exception using errcode = 'PT011', column = 'started_at',
      message = format('started_at %s is out of range: it must lie between 2000-01-01 and one day from now', coalesce(started_at::text, 'null'));
  end if;
  select p.monthly_price into price from tally.plans p where p.plan = start_subscription.plan;
  if not found then
    raise exception using errcode = 'PT011', column = 'plan', message = format('plan %L does not exist', plan),
      hint = 'Create it with tally.upsert_plan.';
  end if;

  -- One writer of a user's subscriptions at a time, so they never overlap.
  perform tally._lock_user(start_subscription.user_id, 'subscription');
  old_tz := tally._user_time_zone(start_subscription.user_id);
  old_anchor := tally._period_anchor(start_subscription.user_id);
  select s.started_at, s.ended_at into latest
    from tally.subscriptions s
   where s.user_id = start_subscription.user_id
   order by s.started_at desc
   limit 1;
  if found then
    if latest.started_at >= start_subscription.started_at then
      raise exception using errcode = 'PT011', column = 'started_at',
        message = format('started_at %s must be after the start of the user''s latest subscription (%s)',
                         start_subscription.started_at, latest.started_at);
    elsif latest.ended_at is null or latest.ended_at > start_subscription.started_at then
      update tally.subscriptions s set ended_at = start_subscription.started_at
       where s.user_id = start_subscription.user_id and s.started_at = latest.started_at;
    end if;
  end if;
  insert into tally.subscriptions (user_id, started_at, plan, monthly_price, ended_at)
  values (start_subscription.user_id, start_subscription.started_at, start_subscription.plan, price, null);
  -- Billing periods now follow this subscription's start day: re-bucket in this transaction.
  perform tally._sync_billing_anchor(start_subscription.user_id, old_tz, old_anchor);
end
$$;

comment on function tally.start_subscription(text, text, timestamptz) is
  'Starts a subscription of a user to a plan at started_at (default now) at the plan''s current monthly price; a running subscription ends at that moment (plan change). started_at must follow the user''s latest subscription start. From then on the user''s billing periods start on the subscription''s day of month (local time); the rollups are re-bucketed in the same transaction.';

-- >>> functions/0712_end_subscription.sql
-- Ends a user's running subscription at a moment (default now); the user falls back to the default plan.
-- Called by the billing backend (cancellation, expiry) and the Python client's end_subscription().
create or replace function tally.end_subscription(user_id text, ended_at timestamptz default now())
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  running    record;
  old_tz     text;
  old_anchor integer;
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'user_id is required';
  elsif ended_at is null then
    raise exception using errcode = 'PT011', column = 'ended_at', message = 'ended_at is required';
  end if;
  perform tally._lock_user(end_subscription.user_id, 'subscription');
  old_tz := tally._user_time_zone(end_subscription.user_id);
  old_anchor := tally._period_anchor(end_subscription.user_id);
  select s.started_at into running
    from tally.subscriptions s
   where s.user_id = end_subscription.user_id and s.ended_at is null;
  if not found then
    return false;
  end if;
  if running.started_at >= end_subscription.ended_at then
    raise exception using errcode = 'PT011', column = 'ended_at',
      message = format('ended_at %s must be after the subscription''s start (%s)', end_subscription.ended_at, running.started_at);
  end if;
  update tally.subscriptions s set ended_at = end_subscription.ended_at
   where s.user_id = end_subscription.user_id and s.started_at = running.started_at;
  -- Billing periods fall back to the user's billing_anchor_day: re-bucket in this transaction.
  perform tally._sync_billing_anchor(end_subscription.user_id, old_tz, old_anchor);
  return true;
end
$$;

comment on function tally.end_subscription(text, timestamptz) is
  'Ends the user''s running subscription at ended_at (default now); returns false when none is running. The user''s billing periods go back to the billing_anchor_day setting at once (also when ended_at lies ahead), re-bucketed in the same transaction.';

-- >>> functions/0715_plan_at.sql
-- The plan in force for a user at a moment: the subscription running then, else the default plan (NULL when none).
-- Called by the quota check, the forecast, the summary card and by producers that want to stamp an event with its plan.
create or replace function tally.plan_at(user_id text, at timestamptz default now())
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select coalesce(
    (select s.plan
       from tally.subscriptions s
      where s.user_id = plan_at.user_id and s.started_at <= plan_at.at
        and (s.ended_at is null or s.ended_at > plan_at.at)
      order by s.started_at desc
      limit 1),
    (select p.plan from tally.plans p where p.is_default))
  );
end
$$;

comment on function tally.plan_at(text, timestamptz) is
  'The plan in force for a user at a moment: the subscription running at that moment, else the default plan, else NULL.';

-- >>> functions/0716_subscription_summary.sql
-- Subscription history of a user, derived: current plan, months subscribed, highest tier reached, revenue to date.
-- Called by account and admin pages and the Python client's subscription_summary().
create or replace function tally.subscription_summary(user_id text, at timestamptz default now())
returns table (
  current_plan      text,
  subscribed_since  timestamptz,
  subscriptions     bigint,
  months_subscribed bigint,
  highest_tier      integer,
  highest_plan      text,
  revenue           numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Read before the query: on Citus it runs on the user's shard, where it may not call
  -- functions that read other distributed tables.
  user_tz   text := tally._user_time_zone(subscription_summary.user_id);
  plan_then text := tally.plan_at(subscription_summary.user_id, subscription_summary.at);
begin
  return query
  -- A subscription is charged its monthly price at its start and at each monthly
  -- anniversary (in the user's time zone) before it ends or before `at`.
  with subs as (
    select s.started_at, s.ended_at, s.plan, s.monthly_price, p.tier,
           tally._months_started(s.started_at at time zone tz.tz,
                                 least(coalesce(s.ended_at, subscription_summary.at), subscription_summary.at) at time zone tz.tz) as months
      from tally.subscriptions s
      join tally.plans p on p.plan = s.plan
     cross join (select user_tz as tz) as tz
     where s.user_id = subscription_summary.user_id and s.started_at <= subscription_summary.at
  )
  select plan_then,
         -- Start of the unbroken run of subscriptions in force at `at` (a plan change continues a run).
         case when exists (select from subs r where r.ended_at is null or r.ended_at > subscription_summary.at)
              then (select max(g.started_at) from subs g
                     where not exists (select from subs h where h.ended_at = g.started_at)) end,
         (select count(*) from subs),
         coalesce((select sum(x.months) from subs x), 0)::bigint,
         (select max(x.tier) from subs x),
         (select x.plan from subs x order by x.tier desc, x.started_at limit 1),
         coalesce((select sum(x.months * x.monthly_price) from subs x), 0);
end
$$;

comment on function tally.subscription_summary(text, timestamptz) is
  'A user''s subscriptions as of at: plan in force, start of the current unbroken run of subscriptions, count, billing months started, highest tier reached (and its plan), revenue to date (each subscription charges its monthly price at its start and every monthly anniversary in the user''s time zone).';

-- >>> functions/0720_engagement_profile.sql
-- Engagement profile of one user: first/last active, days active, current and longest streak, sessions.
-- Called by account pages and the Python client's engagement_profile(); exact at commit (rollups + pending deltas).
create or replace function tally.engagement_profile(user_id text, at timestamptz default now())
returns table (
  time_zone            text,
  first_active_at      timestamptz,
  last_active_at       timestamptz,
  days_active          bigint,
  current_streak       integer,
  current_streak_from  date,
  longest_streak       integer,
  longest_streak_from  date,
  longest_streak_to    date,
  sessions             bigint,
  total_session_ms     numeric,
  avg_session_ms       numeric,
  longest_session_ms   numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  tz    text := tally._user_time_zone(user_id);
  today date := (at at time zone tz)::date;
  session_count bigint;
  session_total numeric;
  session_avg   numeric;
  session_max   numeric;
begin
  -- A stable function: both statements read one snapshot, so a merge in between
  -- cannot make a delta count twice or not at all. The sessions are read by
  -- themselves: a statement that names one user's rows of distributed tables is
  -- sent whole to that user's shard on Citus, where the read functions below
  -- (which read other tables) may not run.
  select count(*), sum(s.ms), round(avg(s.ms)), max(s.ms)
    into session_count, session_total, session_avg, session_max
    from (
      select case when sum(s.explicit_events) > 0 then sum(s.explicit_ms)
                  else coalesce(round(extract(epoch from max(s.last_end_at) - min(s.first_at)) * 1000), 0) end as ms
        from (
          select u.session_id, u.events, u.explicit_events, u.explicit_ms, u.first_at, u.last_end_at
            from tally.user_sessions u
           where u.user_id = engagement_profile.user_id
          union all
          select tally._session_key(p.kind, p.attributes, p.occurred_at), p.events,
                 case when p.kind = 'session' then p.events else 0 end,
                 case when p.kind = 'session' then p.duration_ms else 0 end,
                 case when p.is_use then p.occurred_at end,
                 case when p.is_use then p.occurred_at + p.duration_ms * interval '1 millisecond' end
            from tally.pending_deltas p
           where p.user_id = engagement_profile.user_id and (p.kind = 'session' or p.attributes ? 'session_id')
             and tally._session_key(p.kind, p.attributes, p.occurred_at) is not null
        ) as s
       group by s.session_id
      having sum(s.events) > 0
    ) as s;
  return query
  with active_days as (
    -- Local days with at least one succeeded event (dimension kind covers every event).
    select d.day
      from tally.daily_totals(engagement_profile.user_id, 'kind', '2000-01-01', 'infinity') d
     group by d.day
    having sum(d.events) > 0
  ), islands as (
    -- Gaps and islands: consecutive days share day - row_number.
    select min(a.day) as first_day, max(a.day) as last_day, count(*)::integer as len
      from (select x.day, x.day - (row_number() over (order by x.day))::integer as grp from active_days x) as a
     group by a.grp
  ), current_island as (
    select i.first_day, (least(i.last_day, today) - i.first_day + 1) as len
      from islands i
     where i.first_day <= today and i.last_day >= today - 1
     order by i.first_day desc
     limit 1
  ), longest as (
    select i.first_day, i.last_day, i.len from islands i order by i.len desc, i.last_day desc limit 1
  ), life as (
    select min(t.first_at) as first_at, max(t.last_at) as last_at
      from tally.lifetime_totals(engagement_profile.user_id, 'kind') t
  )
  select tz, l.first_at, l.last_at,
         (select count(*) from active_days),
         coalesce((select c.len from current_island c), 0)::integer,
         (select c.first_day from current_island c),
         coalesce((select g.len from longest g), 0),
         (select g.first_day from longest g),
         (select g.last_day from longest g),
         session_count, session_total, session_avg, session_max
    from life l;
end
$$;

comment on function tally.engagement_profile(text, timestamptz) is
  'Engagement of a user as of at: first/last active moment, local days with succeeded usage, current streak (consecutive active local days ending today, or yesterday while today is still open), longest streak, and sessions (count, total, average and longest length in ms); exact at commit.';

-- >>> functions/0725_summary_card.sql
-- The summary card of one user: lifetime totals, per kind, the top values of each kind's featured dimension (voices, models), and the current billing period against the plan's limits.
-- Called by account pages and the Python client's summary_card(); exact at commit (rollups + pending deltas).
create or replace function tally.summary_card(user_id text, top_n integer default 5, at timestamptz default now())
returns table (
  section         text,
  value           text,
  events          bigint,
  quantity        numeric,
  duration_ms     numeric,
  cost            numeric,
  first_at        timestamptz,
  last_at         timestamptz,
  quota           bigint,
  utilization_pct numeric,
  plan            text,
  period_start    date,
  period_end      date,
  unit            text,
  display_name    text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  plan_now text := tally.plan_at(user_id, at);
  anchor   integer := tally._period_anchor(user_id);
  p_start  date := tally._period_start((at at time zone tally._user_time_zone(user_id))::date, anchor);
  p_end    date := tally._period_end(p_start, anchor);
  featured text;
begin
  if top_n is null or top_n < 0 or top_n > 100 then
    raise exception using errcode = 'PT011', column = 'top_n',
      message = format('top_n must be between 0 and 100 (got %s)', coalesce(top_n::text, 'null'));
  end if;
  -- Sections: 'total' (one row: events, cost, audio duration; the quantity only when every kind
  -- used counts in one unit), 'kind' (every kind, in its unit), one section per featured dimension
  -- of the kinds used (top_n values by duration, then quantity), 'period' (every kind used this
  -- period or limited by the plan). A duration is NULL when no event behind it had one (unknown).
  return query
  with k as (
    select t.value, t.events, t.quantity, t.duration_ms, t.cost, t.first_at, t.last_at,
           coalesce(r.unit, t.value) as unit, coalesce(r.display_name, t.value) as display_name,
           coalesce(r.audio, false) as audio, r.featured_dimension as featured
      from tally.lifetime_totals(summary_card.user_id, 'kind') t
      left join tally.kinds r on r.kind = t.value
  )
  select 'total', null::text, coalesce(sum(k.events), 0)::bigint,
         -- kinds that count no quantity (product events) make no sum mixed
         case when count(distinct k.unit) filter (where k.quantity <> 0) <= 1 then coalesce(sum(k.quantity), 0) end,
         -- listening time: audio kinds only (0 without any; NULL when their durations are unknown)
         case when count(*) filter (where k.audio) = 0 then 0 else sum(k.duration_ms) filter (where k.audio) end,
         coalesce(sum(k.cost), 0), min(k.first_at), max(k.last_at), null::bigint, null::numeric,
         plan_now, p_start, p_end,
         case when count(distinct k.unit) filter (where k.quantity <> 0) = 1 then min(k.unit) filter (where k.quantity <> 0) end,
         null::text
    from k
  union all
  (select 'kind', k.value, k.events, k.quantity, k.duration_ms, k.cost, k.first_at, k.last_at, null, null,
          plan_now, p_start, p_end, k.unit, k.display_name
     from k
    order by k.events desc, k.value);

  for featured in
    select distinct r.featured_dimension
      from tally.lifetime_totals(summary_card.user_id, 'kind') t
      join tally.kinds r on r.kind = t.value
     where r.featured_dimension is not null
     order by 1
  loop
    -- A featured dimension's values may come from several kinds: their quantities add
    -- only when those kinds count in one unit.
    return query
    select featured, v.value, v.events,
           case when u.units = 1 then v.quantity end, v.duration_ms, v.cost, v.first_at, v.last_at,
           null::bigint, null::numeric, plan_now, p_start, p_end,
           case when u.units = 1 then u.unit end, null::text
      from tally.lifetime_totals(summary_card.user_id, featured) v
     cross join (select count(distinct r.unit) as units, min(r.unit) as unit
                   from tally.lifetime_totals(summary_card.user_id, 'kind') t
                   join tally.kinds r on r.kind = t.value
                  where r.featured_dimension = featured and t.quantity <> 0) as u
     where v.events > 0
     order by v.duration_ms desc nulls last, v.quantity desc, v.value
     limit top_n;
  end loop;

  return query
  with period as (
    select * from tally.period_totals(summary_card.user_id, summary_card.at)
  ), limits as (
    select l.kind, l.monthly_limit from tally.plan_limits l where l.plan = plan_now
  )
  select 'period', coalesce(p.kind, l.kind), coalesce(p.events, 0), coalesce(p.quantity, 0),
         coalesce(p.duration_ms, 0), coalesce(p.cost, 0), null::timestamptz, null::timestamptz, l.monthly_limit,
         case when l.monthly_limit > 0 then round(100.0 * coalesce(p.quantity, 0) / l.monthly_limit, 1)
              when l.monthly_limit = 0 then 100.0 end,
         plan_now, p_start, p_end, tally._kind_unit(coalesce(p.kind, l.kind)),
         coalesce((select r.display_name from tally.kinds r where r.kind = coalesce(p.kind, l.kind)), coalesce(p.kind, l.kind))
    from period p
    full join limits l on l.kind = p.kind
   order by coalesce(p.kind, l.kind);
end
$$;

comment on function tally.summary_card(text, integer, timestamptz) is
  'Summary card of a user as rows by section: total (one row: events, cost, audio duration, and the quantity only when every kind used counts in one unit), kind (lifetime per kind in its unit), one section per featured dimension of the kinds used (voice, model: top_n values by duration), period (current billing period per kind with the plan''s quota and utilization %); every row carries the plan in force, the period bounds (end exclusive), the unit and display name. Durations are NULL when unknown. Exact at commit.';

-- >>> functions/0730_usage_history.sql
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

-- >>> functions/0735_usage_comparison.sql
-- Week-over-week, month-over-month and year-over-year comparisons of one user's usage, with deltas and a trend flag.
-- Called by usage pages and insights and the Python client's compare_usage(); exact at commit (rollups + pending deltas).
create or replace function tally.usage_comparison(user_id text, period text default null, metric text default 'quantity',
                                                  kind text default null, complete boolean default false,
                                                  threshold numeric default 5, at timestamptz default now())
returns table (
  comparison     text,
  current_start  date,
  current_end    date,
  previous_start date,
  previous_end   date,
  current_value  numeric,
  previous_value numeric,
  delta          numeric,
  delta_pct      numeric,
  trend          text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  tz       text := tally._user_time_zone(user_id);
  local_at timestamp := at at time zone tz;
  today    date := (at at time zone tz)::date;
  m        text := tally._check_metric(metric);
begin
  if period is not null and period not in ('week', 'month', 'year') then
    raise exception using errcode = 'PT011', column = 'period',
      message = format('period %L is not known: use week, month, year (or null for all three)', period);
  elsif threshold is null or threshold < 0 then
    raise exception using errcode = 'PT011', column = 'threshold',
      message = format('threshold must be a non-negative percentage (got %s)', coalesce(threshold::text, 'null'));
  elsif complete is null then
    raise exception using errcode = 'PT011', column = 'complete', message = 'complete must be true or false';
  elsif m = 'quantity' and kind is null and tally._mixed_units(user_id) then
    raise exception using errcode = 'PT011', column = 'kind',
      message = 'the quantity of all kinds adds different units: pass a kind, or use the metric events, duration_ms or cost';
  end if;
  -- To date (complete = false), like with like: this period from its start up to the moment at
  -- (today counted up to at) against the previous period up to the same local time one period
  -- earlier (Monday 08:00 against last Monday 08:00, Nov 1-21 10:00 against Oct 1-21 10:00). When
  -- the earlier period has no such day (Mar 31 against February, Feb 29 against the year before),
  -- it counts up to the end of its last day. Whole days come from the rollups; the two cut days
  -- from the retained raw log, by the rules of tally.event_contributions. A cut day whose raw log
  -- no longer matches its rollup (dropped by retention) cannot be cut: then both sides stop at
  -- the start of their last day. Complete: the last finished period against the one before it.
  return query
  with spans as (
    select p.name, p.step, p.ord,
           case when complete then (date_trunc(p.name, today::timestamp) - p.step)::date
                else date_trunc(p.name, today::timestamp)::date end as c_start,
           local_at - p.step as p_local
      from (values ('week', interval '1 week', 1), ('month', interval '1 month', 2), ('year', interval '1 year', 3))
             as p(name, step, ord)
     where usage_comparison.period is null or p.name = usage_comparison.period
  ), bounds as (
    select s.name, s.ord, s.c_start, (s.c_start - s.step)::date as p_start,
           case when complete then date_trunc(s.name, today::timestamp)::date else today end as c_day,
           case when complete then s.c_start else s.p_local::date end as p_day,
           -- The moment the previous side's last day is cut at; NULL: counted whole.
           -- (one period later it is today again: the earlier period has the day).
           case when not complete and (s.p_local + s.step)::date = today
                then s.p_local at time zone tz end as p_cut
      from spans s
  ), daily as (
    select d.day, d.value, d.events, d.quantity, d.duration_ms, d.cost, d.failures,
           case m when 'events' then d.events::numeric when 'quantity' then d.quantity::numeric
                  when 'duration_ms' then d.duration_ms::numeric else d.cost end as v
      from tally.daily_totals(usage_comparison.user_id, 'kind',
                              (select min(b.p_start) from bounds b), today) d
  ), cut_days as (
    -- The days counted up to a moment: today up to at, and each previous side's last day up to its cut.
    select today as day, usage_comparison.at as cut where not complete
    union
    select b.p_day, b.p_cut from bounds b where b.p_cut is not null
  ), raw as (
    select c.day, c.cut,
           coalesce(sum(case m when 'events' then r.events when 'quantity' then r.quantity
                               when 'duration_ms' then r.duration_ms else r.cost end)
                      filter (where r.occurred_at <= c.cut
                                and (usage_comparison.kind is null or r.kind = usage_comparison.kind)), 0) as v,
           -- The raw log covers the day when its totals equal the rollups' (retention drops whole months).
           (coalesce(sum(r.events), 0), coalesce(sum(r.failures), 0), coalesce(sum(r.quantity), 0),
            coalesce(sum(r.duration_ms), 0), coalesce(sum(r.cost), 0))
           = (select coalesce(sum(d.events), 0), coalesce(sum(d.failures), 0), coalesce(sum(d.quantity), 0),
                     coalesce(sum(d.duration_ms), 0), coalesce(sum(d.cost), 0)
                from daily d where d.day = c.day) as covered
      from cut_days c
      left join lateral (
        select e.kind, e.occurred_at,
               case when e.status = 'reversed' then -1
                    when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end::numeric as events,
               case when e.status = 'failed' then 1 else 0 end::numeric as failures,
               case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end::numeric as quantity,
               case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end::numeric
                 as duration_ms,
               case when e.status in ('succeeded', 'reversed') then e.cost else 0 end as cost
          from tally.export_events(usage_comparison.user_id, c.day::timestamp at time zone tz,
                                   (c.day + 1)::timestamp at time zone tz) e
      ) r on true
     group by c.day, c.cut
  ), cuts as (
    select b.*, t.v as c_cut_v, coalesce(t.covered, true) and coalesce(p.covered, true) as cut_ok, p.v as p_cut_v
      from bounds b
      left join raw t on not complete and t.day = today
      left join raw p on b.p_cut is not null and p.day = b.p_day
  ), sums as (
    select x.name, x.ord, x.c_start, x.p_start,
           -- Exclusive ends: the day after the last day counted, wholly or up to its cut.
           case when not complete and x.cut_ok then today + 1 else x.c_day end as c_end,
           case when not complete and x.cut_ok then x.p_day + 1 else x.p_day end as p_end,
           coalesce((select sum(d.v) from daily d
                      where d.day >= x.c_start and d.day < x.c_day
                        and (usage_comparison.kind is null or d.value = usage_comparison.kind)), 0)
           + case when not complete and x.cut_ok then coalesce(x.c_cut_v, 0) else 0 end as cur,
           coalesce((select sum(d.v) from daily d
                      where d.day >= x.p_start
                        and d.day < case when not complete and x.cut_ok and x.p_cut is null then x.p_day + 1
                                         else x.p_day end
                        and (usage_comparison.kind is null or d.value = usage_comparison.kind)), 0)
           + case when x.cut_ok and x.p_cut is not null then coalesce(x.p_cut_v, 0) else 0 end as prev
      from cuts x
  )
  select s.name, s.c_start, s.c_end, s.p_start, s.p_end, s.cur, s.prev, s.cur - s.prev,
         case when s.prev <> 0 then round(100 * (s.cur - s.prev) / abs(s.prev), 1) end,
         case when s.prev = 0 then (case when s.cur > 0 then 'up' when s.cur < 0 then 'down' else 'stable' end)
              when abs(100 * (s.cur - s.prev) / abs(s.prev)) < threshold then 'stable'
              when s.cur > s.prev then 'up' else 'down' end
    from sums s
   order by s.ord;
end
$$;

comment on function tally.usage_comparison(text, text, text, text, boolean, numeric, timestamptz) is
  'Week/month/year-over-year comparison of a metric (events, quantity, duration_ms, cost; one kind or all): to date, this period up to the moment at against the previous period up to the same local time one period earlier (Monday 08:00 against last Monday 08:00; when the earlier period lacks the day, up to its end), or (complete = true) the last finished period against the one before; delta, delta % (NULL when previous is 0) and trend: stable when |delta %| < threshold (default 5), else up or down; with previous 0, up when current > 0. Ends are exclusive dates; the last day of each side is counted up to the time of at. Exact at commit.';

-- >>> functions/0736_usage_peak.sql
-- The peak bucket of a range: the day, week or month with the most usage by a metric (earliest on ties).
-- Called by usage pages and the Python client's usage_peak(); no row when the range has no usage.
create or replace function tally.usage_peak(user_id text, range text default '12m', bucket text default 'month',
                                            metric text default 'quantity', kind text default null,
                                            from_day date default null, to_day date default null,
                                            at timestamptz default now())
returns table (
  bucket_start date,
  bucket_end   date,
  value        numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  m text := tally._check_metric(metric);
begin
  return query
  select h.bucket_start, h.bucket_end,
         sum(case m when 'events' then h.events::numeric when 'quantity' then h.quantity::numeric
                    when 'duration_ms' then h.duration_ms::numeric else h.cost end) as v
    from tally.usage_history(usage_peak.user_id, range, bucket, case when kind is null then null else 'kind' end,
                             from_day, to_day, at) h
   where usage_peak.kind is null or h.value = usage_peak.kind
   group by h.bucket_start, h.bucket_end
  having sum(case m when 'events' then h.events::numeric when 'quantity' then h.quantity::numeric
                    when 'duration_ms' then h.duration_ms::numeric else h.cost end) > 0
   order by v desc, h.bucket_start
   limit 1;
end
$$;

comment on function tally.usage_peak(text, text, text, text, text, date, date, timestamptz) is
  'Peak bucket (day, week or month) of a range by a metric (events, quantity, duration_ms, cost), for one kind or all; the earliest wins ties; no row when the range has no usage. Exact at commit.';

-- >>> functions/0740_weekday_distribution.sql
-- Weekday distribution of one user's usage over local days (Monday first), every weekday present.
-- Called by usage pages (patterns) and the Python client's weekday_distribution(); exact at commit.
create or replace function tally.weekday_distribution(user_id text, from_day date default null, to_day date default null,
                                                      at timestamptz default now())
returns table (
  weekday     smallint,
  day_name    text,
  active_days bigint,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  share_pct   numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  last_day date := coalesce(to_day, (at at time zone tally._user_time_zone(user_id))::date);
  mixed    boolean := tally._mixed_units(user_id);  -- quantities of several units do not add: NULL
begin
  if from_day is not null and from_day > last_day then
    raise exception using errcode = 'PT011', column = 'from_day',
      message = format('need from_day <= to_day (got %s .. %s)', from_day, last_day);
  end if;
  -- Default range: all history up to today. share_pct is the weekday's share of events.
  return query
  with days as (
    select d.day, sum(d.events) as events, sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms,
           sum(d.cost) as cost
      from tally.daily_totals(weekday_distribution.user_id, 'kind', coalesce(from_day, '2000-01-01'), last_day) d
     group by d.day
  ), by_weekday as (
    select extract(isodow from x.day)::smallint as wd, count(*) filter (where x.events > 0) as active,
           sum(x.events) as events, sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from days x
     group by 1
  )
  select w.wd::smallint, (array['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[w.wd],
         coalesce(b.active, 0)::bigint, coalesce(b.events, 0)::bigint, case when not mixed then coalesce(b.quantity, 0) end,
         coalesce(b.duration_ms, 0), coalesce(b.cost, 0),
         case when sum(b.events) over () > 0 then round(100.0 * coalesce(b.events, 0) / sum(b.events) over (), 1) else 0 end
    from generate_series(1, 7) as w(wd)
    left join by_weekday b on b.wd = w.wd
   order by w.wd;
end
$$;

comment on function tally.weekday_distribution(text, date, date, timestamptz) is
  'Usage of a user per local weekday (1 = Monday .. 7 = Sunday, all seven present) over from_day..to_day (default: all history to today): active days, events, quantity, duration, cost and share of events in %. Exact at commit.';

-- >>> functions/0741_hour_of_week_heatmap.sql
-- Hour-of-week heatmap of one user's lifetime activity in local time: all 168 hours, Monday 00:00 first.
-- Called by usage pages (patterns) and the Python client's hour_of_week_heatmap(); exact at commit (rollup + pending deltas).
create or replace function tally.hour_of_week_heatmap(user_id text)
returns table (
  how         smallint,
  weekday     smallint,
  hour        smallint,
  events      bigint,
  failures    bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Read before the query: on Citus it runs on the user's shard, where it may not call
  -- functions that read other distributed tables.
  user_tz    text := tally._user_time_zone(hour_of_week_heatmap.user_id);
  user_mixed boolean := tally._mixed_units(hour_of_week_heatmap.user_id);
begin
  return query
  with x as (
    select h.how, h.events, h.failures, h.quantity, h.duration_ms, h.cost
      from tally.user_hours h
     where h.user_id = hour_of_week_heatmap.user_id
    union all
    select ((extract(isodow from l.local_at)::integer - 1) * 24 + extract(hour from l.local_at)::integer)::smallint,
           l.events, l.failures, l.quantity, l.duration_ms, l.cost
      from (select p.occurred_at at time zone user_tz as local_at,
                   p.events, p.failures, p.quantity, p.duration_ms, p.cost
              from tally.pending_deltas p
             where p.user_id = hour_of_week_heatmap.user_id) as l
  )
  select g.how::smallint, (g.how / 24 + 1)::smallint, (g.how % 24)::smallint,
         coalesce(sum(x.events), 0)::bigint, coalesce(sum(x.failures), 0)::bigint,
         -- quantities of several units do not add: NULL
         case when not bool_or(mx.mixed) then coalesce(sum(x.quantity), 0) end,
         coalesce(sum(x.duration_ms), 0), coalesce(sum(x.cost), 0)
    from generate_series(0, 167) as g(how)
   cross join (select user_mixed as mixed) as mx
    left join x on x.how = g.how
   group by g.how
   order by g.how;
end
$$;

comment on function tally.hour_of_week_heatmap(text) is
  'Lifetime activity of a user per local hour of the week: 168 rows, how = (weekday - 1) * 24 + hour with weekday 1 = Monday; events, failures, quantity, duration, cost. Exact at commit.';

-- >>> functions/0742_calendar_heatmap.sql
-- Calendar heatmap of one user for a year: every local day of the year with its usage and a level 0-4.
-- Called by usage pages (patterns) and the Python client's calendar_heatmap(); exact at commit.
create or replace function tally.calendar_heatmap(user_id text, year integer default null, at timestamptz default now())
returns table (
  day         date,
  weekday     smallint,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  level       smallint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  y     integer := coalesce(year, extract(year from (at at time zone tally._user_time_zone(user_id)))::integer);
  jan1 date;
  mixed boolean := tally._mixed_units(user_id);  -- quantities of several units do not add: NULL, levels by events
begin
  if y < 2000 or y > 2200 then
    raise exception using errcode = 'PT011', column = 'year', message = format('year must be between 2000 and 2200 (got %s)', y);
  end if;
  jan1 := make_date(y, 1, 1);
  -- level 0: no succeeded event; 1-4: quartile of the day's quantity among the
  -- year's active days (ceil(4 * cume_dist)), so equal days share a level.
  return query
  with days as (
    select d.day, sum(d.events) as events, sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms,
           sum(d.cost) as cost
      from tally.daily_totals(calendar_heatmap.user_id, 'kind', jan1, (jan1 + interval '1 year')::date - 1) d
     group by d.day
  ), levels as (
    select x.day, ceil(4 * cume_dist() over (order by case when mixed then x.events else x.quantity end))::smallint as lvl
      from days x
     where x.events > 0
  )
  select g::date, extract(isodow from g)::smallint, coalesce(x.events, 0)::bigint, case when not mixed then coalesce(x.quantity, 0) end,
         coalesce(x.duration_ms, 0), coalesce(x.cost, 0), coalesce(l.lvl, 0)::smallint
    from generate_series(jan1::timestamp, (jan1 + interval '1 year')::date - 1, interval '1 day') g
    left join days x on x.day = g::date
    left join levels l on l.day = g::date
   order by 1;
end
$$;

comment on function tally.calendar_heatmap(text, integer, timestamptz) is
  'Every local day of a year (default: the current one) with a user''s events, quantity, duration, cost and a level: 0 without succeeded events, else 1-4 by quartile of quantity among the year''s active days. Exact at commit.';

-- >>> functions/0743_monthly_summaries.sql
-- Monthly summaries of one user: the last N local calendar months (current included), every month present.
-- Called by usage pages (patterns) and the Python client's monthly_summaries(); exact at commit.
create or replace function tally.monthly_summaries(user_id text, months integer default 12, at timestamptz default now())
returns table (
  month_start     date,
  month_end       date,
  events          bigint,
  quantity        numeric,
  duration_ms     numeric,
  cost            numeric,
  failures        bigint,
  active_days     bigint,
  top_kind        text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  first_month date;
  mixed boolean := tally._mixed_units(user_id);  -- quantities of several units do not add: NULL
begin
  if months is null or months < 1 or months > 120 then
    raise exception using errcode = 'PT011', column = 'months',
      message = format('months must be between 1 and 120 (got %s)', coalesce(months::text, 'null'));
  end if;
  first_month := (date_trunc('month', today::timestamp) - make_interval(months => months - 1))::date;
  -- top_kind: the kind with the most events in the month (then quantity, then name).
  return query
  with d as (
    select date_trunc('month', x.day::timestamp)::date as m, x.day, x.value, x.events, x.quantity, x.duration_ms,
           x.cost, x.failures
      from tally.daily_totals(monthly_summaries.user_id, 'kind', first_month,
                              (date_trunc('month', today::timestamp) + interval '1 month')::date - 1) x
  ), per_kind as (
    select d.m, d.value, sum(d.events) as events, sum(d.quantity) as quantity from d group by d.m, d.value
  ), per_day as (
    select d.m, d.day from d group by d.m, d.day having sum(d.events) > 0
  )
  select g::date, (g + interval '1 month')::date,
         coalesce(sum(d.events), 0)::bigint, case when not mixed then coalesce(sum(d.quantity), 0) end,
         coalesce(sum(d.duration_ms), 0),
         coalesce(sum(d.cost), 0), coalesce(sum(d.failures), 0)::bigint,
         (select count(*) from per_day p where p.m = g::date),
         (select k.value from per_kind k where k.m = g::date and k.events > 0
           order by k.events desc, k.quantity desc, k.value limit 1)
    from generate_series(first_month::timestamp, today::timestamp, interval '1 month') g
    left join d on d.m = g::date
   group by g
   order by g;
end
$$;

comment on function tally.monthly_summaries(text, integer, timestamptz) is
  'The last months local calendar months of a user (current one included, oldest first, all present): events, quantity, duration, cost, failures, active days and the top kind by events. month_end is exclusive. Exact at commit.';

-- >>> functions/0750_quota_forecast.sql
-- Limits and forecast of one user for the current billing period, per kind: utilization, run rate, projection, date the limit is reached.
-- Called by usage pages and insights and the Python client's quota_forecast(); exact at commit (rollups + pending deltas).
create or replace function tally.quota_forecast(user_id text, lookback_days integer default 7, at timestamptz default now())
returns table (
  kind            text,
  plan            text,
  period_start    date,
  period_end      date,
  used            numeric,
  quota           bigint,
  remaining       numeric,
  utilization_pct numeric,
  run_rate        numeric,
  projected       numeric,
  reaches_limit_on date,
  status          text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  tz       text := tally._user_time_zone(user_id);
  today    date := (at at time zone tz)::date;
  plan_now text := tally.plan_at(user_id, at);
  anchor   integer := tally._period_anchor(user_id);
  p_start  date := tally._period_start(today, anchor);
  p_end    date := tally._period_end(p_start, anchor);
  -- The part of today still to come, in local days: the rest of today over its real length (23 or
  -- 25 hours on a daylight saving day), so that the last day of a period still projects its rest.
  today_left numeric := extract(epoch from ((today + 1)::timestamp at time zone tz) - at)
                        / extract(epoch from ((today + 1)::timestamp at time zone tz) - (today::timestamp at time zone tz));
  days_left  numeric := (p_end - today - 1) + today_left;
begin
  if lookback_days is null or lookback_days < 1 or lookback_days > 365 then
    raise exception using errcode = 'PT011', column = 'lookback_days',
      message = format('lookback_days must be between 1 and 365 (got %s)', coalesce(lookback_days::text, 'null'));
  end if;
  -- run_rate: quantity per day of the kind over the lookback_days local days ending
  -- today (today included). projected = used + run_rate * the time left in the
  -- period (the rest of today, then the full days after it; the end is exclusive).
  -- reaches_limit_on: today when the quota is used up, else the local day on which
  -- used + run_rate * elapsed time reaches it, when that is inside the period.
  return query
  with period as (
    select t.kind, t.quantity from tally.period_totals(quota_forecast.user_id, quota_forecast.at) t
  ), limits as (
    select l.kind, l.monthly_limit from tally.plan_limits l where l.plan = plan_now
  ), rates as (
    select d.value as kind, sum(d.quantity)::numeric / lookback_days as rate
      from tally.daily_totals(quota_forecast.user_id, 'kind', today - (lookback_days - 1), today) d
     group by d.value
  ), base as (
    select coalesce(p.kind, l.kind) as kind, coalesce(p.quantity, 0) as used, l.monthly_limit as quota,
           greatest(coalesce(r.rate, 0), 0) as rate
      from period p
      full join limits l on l.kind = p.kind
      left join rates r on r.kind = coalesce(p.kind, l.kind)
  ), projected as (
    select b.*, b.used + round(b.rate * days_left) as proj from base b
  )
  select x.kind, plan_now, p_start, p_end, x.used, x.quota, case when x.quota is not null then greatest(x.quota - x.used, 0) end,
         case when x.quota > 0 then round(100.0 * x.used / x.quota, 1) when x.quota = 0 then 100.0 end,
         round(x.rate, 2), x.proj,
         case when x.quota is null then null
              when x.used >= x.quota then today
              -- The day holding the moment (quota - used) / rate local days from at: today when that
              -- is before midnight, else one of the following days (a limit reached at the period's
              -- end counts on its last day).
              when x.proj >= x.quota then
                case when (x.quota - x.used) / x.rate < today_left then today
                     else least(today + 1 + floor((x.quota - x.used) / x.rate - today_left)::integer, p_end - 1) end
         end,
         case when x.quota is null then 'unlimited'
              when x.used >= x.quota then 'reached'
              when x.proj >= x.quota then 'will_reach'
              else 'ok' end
    from projected x
   order by x.kind;
end
$$;

comment on function tally.quota_forecast(text, integer, timestamptz) is
  'Current billing period of a user per kind (used this period or limited by the plan in force): used, quota, remaining, utilization %, run rate (quantity per day over the last lookback_days local days, today included), projected usage at period end (used + run rate * the time left: the rest of today, by its real length in the user''s time zone, and the full days after it), the local date the limit is reached (today when used up; NULL when unlimited or not reached this period) and status unlimited/reached/will_reach/ok. Exact at commit.';

-- >>> functions/0751_recommended_plan.sql
-- The cheapest plan whose limits cover the user's projected usage of every kind this billing period.
-- Called by upgrade prompts and insights and the Python client's recommended_plan(); no row when no plan covers it.
create or replace function tally.recommended_plan(user_id text, lookback_days integer default 7, at timestamptz default now())
returns table (
  plan          text,
  tier          integer,
  monthly_price numeric,
  current_plan  text,
  is_current    boolean
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  with need as (
    select f.kind, f.projected from tally.quota_forecast(recommended_plan.user_id, lookback_days, recommended_plan.at) f
     where f.projected > 0
  )
  select p.plan, p.tier, p.monthly_price, tally.plan_at(recommended_plan.user_id, recommended_plan.at),
         p.plan is not distinct from tally.plan_at(recommended_plan.user_id, recommended_plan.at)
    from tally.plans p
   where not exists (
           select from need n
             join tally.plan_limits l on l.plan = p.plan and l.kind = n.kind
            where l.monthly_limit < n.projected)
   order by p.monthly_price, p.tier desc, p.plan
   limit 1
$$;

comment on function tally.recommended_plan(text, integer, timestamptz) is
  'Cheapest plan (then highest tier, then name) whose per-kind limits cover the projected usage of every kind this period (see tally.quota_forecast; a kind without a limit is covered); is_current tells whether it is the plan in force. No row when no plan covers the projection.';

-- >>> functions/0755_check_quota.sql
-- Hard quota check before metered work, inside the caller's transaction: locks (user, kind), reads the exact period usage, raises PT012 when it would exceed the limit.
-- Called by services before they do and record metered work in the same transaction (Python client: check_quota()).
create or replace function tally.check_quota(user_id text, kind text, amount bigint default 1, at timestamptz default now())
returns numeric
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  plan_now text;
  lim      bigint;
  tz       text;
  anchor   integer;
  p_start  date;
  used     numeric;
begin
  -- A standby's usage lags behind the primary's and it cannot take the lock: refuse rather than answer stale.
  if pg_catalog.pg_is_in_recovery() then
    raise exception using errcode = 'PT013',
      message = 'tally.check_quota runs on the primary only: this server is a read-only hot standby',
      hint = 'Send quota checks, with the writes they guard, to the primary; reads may go to standbys.';
  end if;
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'user_id is required';
  elsif kind is null or kind = '' then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required';
  elsif amount is null or amount < 0 or amount > 1000000000000000 then
    raise exception using errcode = 'PT011', column = 'amount',
      message = format('amount must be an integer between 0 and 1e15 (got %s)', coalesce(amount::text, 'null'));
  elsif at is null then
    raise exception using errcode = 'PT011', column = 'at', message = 'at is required';
  elsif current_setting('transaction_isolation') = 'repeatable read' then
    -- The usage read below must see what the previous holder of the lock committed;
    -- a repeatable-read snapshot predates the lock. (Serializable is safe: SSI aborts one of two racers.)
    raise exception using errcode = 'PT011', column = 'transaction_isolation',
      message = 'tally.check_quota needs READ COMMITTED or SERIALIZABLE isolation, not REPEATABLE READ';
  end if;

  plan_now := tally.plan_at(check_quota.user_id, check_quota.at);
  select l.monthly_limit into lim from tally.plan_limits l where l.plan = plan_now and l.kind = check_quota.kind;
  if lim is null then
    return null;  -- no limit on this kind: nothing to serialize
  end if;

  -- Callers for the same user and kind queue here until the previous one commits
  -- or rolls back (the lock is held to the end of the transaction, so its usage
  -- record is visible before the next caller reads). This function is VOLATILE,
  -- so the next statement takes a fresh snapshot (READ COMMITTED) after the lock.
  perform tally._lock_user(check_quota.user_id, 'quota:' || check_quota.kind);

  tz := tally._user_time_zone(check_quota.user_id);
  anchor := tally._period_anchor(check_quota.user_id);
  p_start := tally._period_start((check_quota.at at time zone tz)::date, anchor);

  select coalesce(sum(x.quantity), 0) into used
    from (
      select t.quantity
        from tally.user_periods t
       where t.user_id = check_quota.user_id and t.period_start = p_start and t.kind = check_quota.kind
      union all
      select q.quantity
        from tally.pending_deltas q
       where q.user_id = check_quota.user_id and q.billable and q.kind = check_quota.kind
         and tally._period_start((q.occurred_at at time zone tz)::date, anchor) = p_start
    ) as x;

  if used + amount > lim then
    raise exception using errcode = 'PT012', column = 'amount',
      message = format('quota exceeded: %s of %s used in the period starting %s, %s more would exceed the %s limit of plan %s',
                       used, check_quota.kind, p_start, amount, lim, plan_now),
      detail = format('user_id=%s kind=%s used=%s amount=%s limit=%s plan=%s period_start=%s',
                      check_quota.user_id, check_quota.kind, used, amount, lim, plan_now, p_start),
      hint = 'Upgrade the plan (tally.recommended_plan) or wait for the next billing period.';
  end if;
  return lim - used - amount;
end
$$;

comment on function tally.check_quota(text, text, bigint, timestamptz) is
  'Hard quota check: serializes callers per (user, kind) with a row lock only the owner can take, reads the exact billing-period usage and raises PT012 when usage + amount would exceed the limit of the plan in force (PT013 on a hot standby, whose usage lags); returns the quota left after amount (NULL when the kind is unlimited). Call it in the transaction that records the usage: concurrent callers can then never together exceed the limit.';

-- >>> functions/0760_usage_anomalies.sql
-- Anomaly flags per local day: robust z-score of the day against the median and MAD of the 28 days before it.
-- Called by usage pages and insights and the Python client's usage_anomalies(); exact at commit.
create or replace function tally.usage_anomalies(user_id text, from_day date default null, to_day date default null,
                                                 metric text default 'quantity', kind text default null,
                                                 threshold numeric default 3.5, at timestamptz default now())
returns table (
  day             date,
  value           numeric,
  baseline_median numeric,
  baseline_mad    numeric,
  active_days     integer,
  robust_z        numeric,
  is_anomaly      boolean
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  m     text := tally._check_metric(metric);
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  f     date := coalesce(from_day, coalesce(to_day, today) - 29);
  t     date := coalesce(to_day, today);
begin
  if t < f or t - f > 3660 then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day within 3660 days (got %s .. %s)', f, t);
  elsif m = 'quantity' and kind is null and tally._mixed_units(user_id) then
    raise exception using errcode = 'PT011', column = 'kind',
      message = 'the quantity of all kinds adds different units: pass a kind, or use the metric events, duration_ms or cost';
  elsif threshold is null or threshold <= 0 then
    raise exception using errcode = 'PT011', column = 'threshold',
      message = format('threshold must be positive (got %s)', coalesce(threshold::text, 'null'));
  end if;
  -- Method (Iglewicz and Hoaglin's modified z-score): baseline = the 28 local days
  -- before the day, zero-filled; med = their median, MAD = median |x - med|;
  -- z = 0.6745 (x - med) / MAD, or (x - med) / (1.253314 * mean |x - med|) when
  -- MAD is 0; NULL when both are 0. A day is an anomaly when |z| >= threshold
  -- (default 3.5) and at least 7 of the 28 baseline days had usage.
  return query
  with series as (
    select g::date as day, coalesce(sum(case m when 'events' then d.events::numeric when 'quantity' then d.quantity::numeric
                                              when 'duration_ms' then d.duration_ms::numeric else d.cost end), 0) as v
      from generate_series((f - 28)::timestamp, t::timestamp, interval '1 day') g
      left join tally.daily_totals(usage_anomalies.user_id, 'kind', f - 28, t) d
        on d.day = g::date and (usage_anomalies.kind is null or d.value = usage_anomalies.kind)
     group by g
  ), med as (
    select s.day, s.v, w.med, w.active
      from series s
     cross join lateral (
       select percentile_cont(0.5) within group (order by b.v)::numeric as med,
              count(*) filter (where b.v <> 0)::integer as active
         from series b
        where b.day >= s.day - 28 and b.day < s.day) as w
     where s.day >= f
  ), dev as (
    select x.*, w.mad, w.meanad
      from med x
     cross join lateral (
       select percentile_cont(0.5) within group (order by abs(b.v - x.med))::numeric as mad,
              avg(abs(b.v - x.med)) as meanad
         from series b
        where b.day >= x.day - 28 and b.day < x.day) as w
  ), z as (
    select x.*, case when x.mad > 0 then 0.6745 * (x.v - x.med) / x.mad
                     when x.meanad > 0 then (x.v - x.med) / (1.253314 * x.meanad) end as z
      from dev x
  )
  select x.day, x.v, x.med, x.mad, x.active, round(x.z, 2),
         coalesce(abs(x.z) >= threshold and x.active >= 7, false)
    from z x
   order by x.day;
end
$$;

comment on function tally.usage_anomalies(text, date, date, text, text, numeric, timestamptz) is
  'Per local day of from_day..to_day (default: the last 30 days): the metric (events, quantity, duration_ms, cost; one kind or all), the median and MAD of the 28 days before it (zero-filled), the modified z-score 0.6745 (x - median) / MAD (mean absolute deviation * 1.253314 when MAD is 0) and is_anomaly = |z| >= threshold (3.5) with at least 7 active baseline days. Exact at commit.';

-- >>> functions/0762_peer_percentile.sql
-- Where one user's usage of a kind this billing period stands among all users of the kind (anonymized cut points).
-- Called by insights and the Python client's peer_percentile(); SECURITY INVOKER: a reader learns only its own position.
create or replace function tally.peer_percentile(user_id text, kind text default 'tts', at timestamptz default now())
returns table (
  period_start date,
  quantity     numeric,
  peers        bigint,
  percentile   numeric,
  refreshed_at timestamptz
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if kind is null or kind = '' then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required';
  end if;
  -- The user's own usage is exact (rollups + pending) and read with the caller's
  -- rights: row-level security shows a reader only its own rows, so for any other
  -- user id, existing or not, this answers no row. Nobody else's usage is read
  -- here: the others are only the published cut points of the distribution
  -- (tally.peer_distribution_mv, as of its last refresh), which hold no user id,
  -- never the smallest or largest usage, and nothing for small groups.
  return query
  with mine as (
    select t.period_start, t.quantity
      from tally.period_totals(peer_percentile.user_id, peer_percentile.at) t
     where t.kind = peer_percentile.kind and t.quantity > 0
  )
  select m.period_start, m.quantity, d.peers,
         case when d.peers is not null
              then coalesce(d.above, 0)::numeric end,
         d.refreshed_at
    from mine m
    left join lateral (
      -- At most 99 rows by the unique index: the read does not grow with users.
      select max(c.peers) as peers, max(c.percentile) filter (where c.cut_point < m.quantity) as above,
             max(c.refreshed_at) as refreshed_at
        from tally.peer_distribution_mv c
       where c.kind = peer_percentile.kind
         and c.month = date_trunc('month', m.period_start::timestamp)::date
    ) d on true;
end
$$;

comment on function tally.peer_percentile(text, text, timestamptz) is
  'The user''s usage of a kind in the current billing period (exact) and a lower bound of the share (%) of users of the kind whose periods start in the same month who used less (the highest published cut point of tally.peer_distribution_mv below it; 0 below the lowest), with the number of those users and when the distribution was refreshed; peers and percentile NULL when the month has no published distribution. No row without usage of the kind this period, and no row for a user the caller cannot see (a reader sees only itself).';

-- >>> functions/0765_usage_insights.sql
-- Short plain-language insights with numbers for one user ("tts usage is up 40% this month so far").
-- Called by account pages and the Python client's usage_insights(); built only from the other read functions.
create or replace function tally.usage_insights(user_id text, at timestamptz default now())
returns table (
  code    text,
  subject text,
  message text,
  value   numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
begin
  -- In order: month trend per kind (top 3 kinds this month, |delta| >= 5%), streak,
  -- favourite voice, quota warnings, anomaly of today or yesterday, peer
  -- percentile (from the anonymized distribution, only with at least 10 peers).
  return query
  with trends as (
    select k.value as kind, c.current_value, c.previous_value, c.delta_pct
      -- Kinds count in different units, so the top kinds are the ones with the most events.
      from (select t.value
              from tally.daily_totals(usage_insights.user_id, 'kind', date_trunc('month', today::timestamp)::date, today) t
             group by t.value
            having sum(t.quantity) > 0
             order by sum(t.events) desc, t.value
             limit 3) as k
     cross join lateral tally.usage_comparison(usage_insights.user_id, 'month', 'quantity', k.value, false, 5,
                                               usage_insights.at) c
     where c.delta_pct is not null and abs(c.delta_pct) >= 5
  ), profile as (
    select * from tally.engagement_profile(usage_insights.user_id, usage_insights.at)
  ), voice as (
    -- The favourite value of the dimension featured by the user's audio kinds (voice for text to speech).
    select f.dimension, v.value, v.duration_ms
      from (select r.featured_dimension as dimension
              from tally.lifetime_totals(usage_insights.user_id, 'kind') t
              join tally.kinds r on r.kind = t.value
             where r.audio and r.featured_dimension is not null and t.duration_ms > 0
             order by t.duration_ms desc, r.kind
             limit 1) as f
     cross join lateral tally.lifetime_totals(usage_insights.user_id, f.dimension) v
     where v.duration_ms > 0
     order by v.duration_ms desc, v.value
     limit 1
  ), quota as (
    select * from tally.quota_forecast(usage_insights.user_id, 7, usage_insights.at) f
     where f.status in ('reached', 'will_reach') or f.utilization_pct >= 80
  ), anomaly as (
    -- Per kind used today or yesterday, in its own unit.
    select k.value as kind, a.day, a.value, a.baseline_median
      from (select distinct t.value
              from tally.daily_totals(usage_insights.user_id, 'kind', today - 1, today) t
             where t.quantity > 0) as k
     cross join lateral tally.usage_anomalies(usage_insights.user_id, today - 1, today, 'quantity', k.value, 3.5,
                                              usage_insights.at) a
     where a.is_anomaly and a.value > a.baseline_median
     order by a.day desc, a.value / greatest(a.baseline_median, 1) desc, k.value
     limit 1
  ), top_kind as (
    select p.kind from tally.period_totals(usage_insights.user_id, usage_insights.at) p
     order by p.events desc, p.kind limit 1
  ), peer as (
    select k.kind, r.percentile
      from top_kind k
     cross join lateral tally.peer_percentile(usage_insights.user_id, k.kind, usage_insights.at) r
     where r.peers >= 10 and r.percentile is not null
  )
  select x.code, x.subject, x.message, x.value from (
    select 1 as ord, 'month_trend'::text as code, t.kind as subject,
           format('%s usage is %s %s%% this month so far (%s vs %s %s by this day last month)', t.kind,
                  case when t.delta_pct > 0 then 'up' else 'down' end, abs(t.delta_pct),
                  to_char(t.current_value, 'FM999,999,999,999,990'), to_char(t.previous_value, 'FM999,999,999,999,990'),
                  tally._kind_unit(t.kind)) as message,
           t.delta_pct as value
      from trends t
    union all
    select 2, 'streak', null,
           format('You are on a %s-day streak (your longest is %s days)', p.current_streak, p.longest_streak),
           p.current_streak::numeric
      from profile p
     where p.current_streak >= 2
    union all
    select 3, 'top_' || v.dimension, v.value,
           format('Your favourite %s is %s: %s listened', v.dimension, v.value, tally._duration_text(v.duration_ms)),
           v.duration_ms::numeric
      from voice v
    union all
    select 4, 'quota', q.kind,
           case when q.status = 'reached'
                  then format('You have used your whole %s allowance for this period (%s of %s)', q.kind,
                              to_char(q.used, 'FM999,999,999,999,990'), to_char(q.quota, 'FM999,999,999,999,990'))
                when q.status = 'will_reach'
                  then format('At your current pace you will reach your %s limit on %s (%s%% used so far)', q.kind,
                              to_char(q.reaches_limit_on, 'YYYY-MM-DD'), q.utilization_pct)
                else format('You have used %s%% of your %s allowance for this period', q.utilization_pct, q.kind) end,
           q.utilization_pct
      from quota q
    union all
    select 5, 'anomaly', a.kind,
           format('%s %s usage (%s %s) was far above your usual (median %s a day)',
                  case when a.day = today then 'Today''s' else 'Yesterday''s' end, a.kind,
                  to_char(a.value, 'FM999,999,999,999,990'), tally._kind_unit(a.kind),
                  to_char(a.baseline_median, 'FM999,999,999,999,990')),
           a.value
      from anomaly a
    union all
    select 6, 'peer', r.kind, format('You used more %s than %s%% of users this period', r.kind, r.percentile), r.percentile
      from peer r
     where r.percentile >= 50
  ) as x
   order by x.ord, x.subject;
end
$$;

comment on function tally.usage_insights(text, timestamptz) is
  'Short plain-language insights with their number: month_trend (top 3 kinds, |change| >= 5% against the same dates last month), streak (2+ days), top_voice (the favourite value of the dimension the user''s audio kinds feature: top_ and its name), quota (reached, will reach, or 80%+ used), anomaly (today''s or yesterday''s quantity of a kind far above its usual), peer (more than at least 50% of the users of the top kind, at least 10 peers; as of the last analytics refresh). Exact at commit, except the peer distribution.';

-- >>> functions/0769_csv_safe.sql
-- A text cell made safe for spreadsheets: a value starting with =, +, -, @, tab or carriage return gets a leading single quote.
-- Called by the Python client's CSV exports (export_events_csv, export_rollups_csv, `pgtally export`) on every text column.
--
-- Not pinned to a search_path on purpose: a pinned SQL function is never inlined,
-- and this one runs once per exported cell (pinned, an export of a million events
-- took four times as long). It names only its argument and pg_catalog functions
-- and operators (spelled OPERATOR(pg_catalog.x)), so no caller's search_path can
-- change what it does.
create or replace function tally._csv_safe(cell text)
returns text
language sql
immutable
parallel safe
as $$
  select case
    when pg_catalog.left(cell, 1) OPERATOR(pg_catalog.=) any (array['=', '+', '-', '@', E'\t', E'\r'])
      then '''' OPERATOR(pg_catalog.||) cell
    else cell
  end
$$;

comment on function tally._csv_safe(text) is
  'A CSV cell a spreadsheet will not run as a formula: text starting with =, +, -, @, tab or carriage return gets a leading single quote; NULL stays NULL (the stored data are unchanged). Apply it to text columns only, in the select list of COPY ... TO STDOUT (FORMAT csv).';

-- >>> functions/0770_export_events.sql
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

-- >>> functions/0771_export_rollups.sql
-- Daily rollups of one user per dimension, local day and value in a range of local days, for CSV export.
-- Called by the Python client's export_rollups_csv() and `pgtally export --rollups`; exact at commit (rollups + pending deltas).
create or replace function tally.export_rollups(user_id text, from_day date, to_day date, dimension_name text default null)
returns table (
  day         date,
  dimension   text,
  value       text,
  events      bigint,
  failures    bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if export_rollups.dimension_name is not null then
    perform tally._dimension_keys(export_rollups.dimension_name);
  end if;
  if from_day is null or to_day is null or to_day < from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day (got %s .. %s)', coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  end if;
  return query
  select t.day, d.name, t.value, t.events, t.failures, t.quantity, t.duration_ms, t.cost
    from tally.dimensions d
   cross join lateral tally.daily_totals(export_rollups.user_id, d.name, from_day, to_day) t
   where export_rollups.dimension_name is null or d.name = export_rollups.dimension_name
   order by t.day, d.name, t.value;
end
$$;

comment on function tally.export_rollups(text, date, date, text) is
  'Daily rollups of a user (local days from_day..to_day) per declared dimension (or the one given) and value: events, failures, quantity, duration, cost. Exact at commit. For a CSV file, pass dimension and value through tally._csv_safe (values are producers'' attribute values).';

-- >>> functions/0813_analytics_span.sql
-- How an admin figure over [from_at, to_at) is read: whole UTC days from the per-user day tables (plus pending deltas),
-- partial days at either end from the raw log. Called by the admin analytics helpers (tally._analytics_*).
create or replace function tally._analytics_span(from_at timestamptz, to_at timestamptz)
returns table (window_start timestamptz, window_end timestamptz, first_day date, end_day date, head_end timestamptz,
               tail_start timestamptz)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- A window that starts or ends inside a UTC day takes that day's part from the
  -- raw log (exact instants). When retention has dropped that part of the log, the
  -- whole day is read from the day tables instead and the window is widened to
  -- the day's bounds: window_start / window_end say what was read.
  with b as (
    select x.d0, x.d1, x.d0::timestamp at time zone 'UTC' as m0, x.d1::timestamp at time zone 'UTC' as m1,
           coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r),
                    '-infinity'::timestamptz) as retained_since
      from (select (_analytics_span.from_at at time zone 'UTC')::date as d0,
                   (_analytics_span.to_at at time zone 'UTC')::date as d1) x
  ), s as (
    select case when _analytics_span.from_at = b.m0 or b.m0 >= b.retained_since then _analytics_span.from_at else b.m0 end
             as window_start,
           case when _analytics_span.from_at = b.m0 or b.m0 < b.retained_since then b.d0 else b.d0 + 1 end as first_day,
           case when _analytics_span.to_at = b.m1 or b.m1 >= b.retained_since then _analytics_span.to_at
                else (b.d1 + 1)::timestamp at time zone 'UTC' end as window_end,
           case when _analytics_span.to_at = b.m1 or b.m1 >= b.retained_since then b.d1 else b.d1 + 1 end as end_day
      from b
  )
  -- Head: [window_start, first whole day); tail: [end of the whole days, window_end).
  -- A window inside one day (first_day > end_day) is all head.
  select s.window_start, s.window_end, s.first_day, s.end_day,
         least(s.first_day::timestamp at time zone 'UTC', s.window_end),
         greatest(s.end_day::timestamp at time zone 'UTC', least(s.first_day::timestamp at time zone 'UTC', s.window_end))
    from s
$$;

comment on function tally._analytics_span(timestamptz, timestamptz) is
  'For an admin window [from_at, to_at): the window actually read (widened to whole UTC days where retention dropped the raw log of a partial day), the whole UTC days [first_day, end_day) read from the per-user day tables, and the partial days [window_start, head_end) and [tail_start, window_end) read from the raw log (internal).';

-- >>> functions/0814_analytics_deltas.sql
-- The deltas of [from_at, to_at) that the per-user day tables do not hold: pending deltas of the window's whole UTC days
-- and the raw log's rows of its partial days. Called by tally._analytics_delta_values and tally._analytics_delta_ops.
create or replace function tally._analytics_deltas(from_at timestamptz, to_at timestamptz)
returns table (user_id text, kind text, occurred_at timestamptz, attributes jsonb, events integer, failures integer,
               quantity bigint, duration_ms bigint, timed_events integer, cost numeric, billable boolean,
               is_use boolean, plan text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  -- Whole days: the day tables hold the merged deltas; add the pending ones (exact at commit).
  return query
  select p.user_id, p.kind, p.occurred_at, p.attributes, p.events, p.failures, p.quantity, p.duration_ms,
         p.timed_events, p.cost, p.billable, p.is_use, coalesce(p.plan, '')
    from tally.pending_deltas p
   where p.occurred_at >= s.first_day::timestamp at time zone 'UTC'
     and p.occurred_at < s.end_day::timestamp at time zone 'UTC';
  -- Partial days: every retained log row (merged or pending) contributes by the rules of
  -- the insert trigger, as in tally.event_contributions. Two ranges, so that only their
  -- partitions are read.
  return query
  select e.user_id, e.kind, e.occurred_at, e.attributes,
         case when e.status = 'reversed' then -1
              when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end,
         case when e.status = 'failed' then 1 else 0 end,
         case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end,
         case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end,
         case when e.duration_ms is null or e.status not in ('succeeded', 'reversed') then 0
              when e.status = 'reversed' then -1 when e.corrects_event_id is not null then 0 else 1 end,
         case when e.status in ('succeeded', 'reversed') then e.cost else 0 end,
         e.billable and e.status in ('succeeded', 'reversed'),
         e.status = 'succeeded' and e.corrects_event_id is null,
         coalesce(e.plan, '')
    from tally.usage_events e
   where (e.occurred_at >= s.window_start and e.occurred_at < s.head_end)
  union all
  select e.user_id, e.kind, e.occurred_at, e.attributes,
         case when e.status = 'reversed' then -1
              when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end,
         case when e.status = 'failed' then 1 else 0 end,
         case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end,
         case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end,
         case when e.duration_ms is null or e.status not in ('succeeded', 'reversed') then 0
              when e.status = 'reversed' then -1 when e.corrects_event_id is not null then 0 else 1 end,
         case when e.status in ('succeeded', 'reversed') then e.cost else 0 end,
         e.billable and e.status in ('succeeded', 'reversed'),
         e.status = 'succeeded' and e.corrects_event_id is null,
         coalesce(e.plan, '')
    from tally.usage_events e
   where (e.occurred_at >= s.tail_start and e.occurred_at < s.window_end);
end
$$;

comment on function tally._analytics_deltas(timestamptz, timestamptz) is
  'Signed contributions (as in tally.pending_deltas; plan '''' when none) of the part of [from_at, to_at) the per-user day tables do not hold: pending deltas of the whole UTC days, and the raw log''s rows of the partial days at either end, by the rules of tally.event_contributions (internal).';

-- >>> functions/0816_analytics_delta_values.sql
-- The deltas of [from_at, to_at) the day tables do not hold, folded like tally.user_daily_values rows (per user, UTC day, plan, dimension, value, kind).
-- Called by the admin materialized views and the admin reads over a range, next to the rows of tally.user_daily_values.
create or replace function tally._analytics_delta_values(from_at timestamptz, to_at timestamptz,
                                                         only_dimension text default null)
returns table (user_id text, day date, plan text, dimension text, value text, kind text, events bigint, succeeded bigint,
               failures bigint, quantity numeric, duration_ms numeric, timed_events bigint, cost numeric,
               billable_cost numeric, first_at timestamptz, last_at timestamptz)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- The same folding as tally._apply_admin applies to a merge batch.
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, m.plan, d.name, v.value, m.kind,
         sum(m.events)::bigint, (count(*) filter (where m.is_use))::bigint, sum(m.failures)::bigint,
         sum(m.quantity)::numeric, sum(m.duration_ms)::numeric, sum(m.timed_events)::bigint, sum(m.cost),
         coalesce(sum(m.cost) filter (where m.billable), 0),
         min(m.occurred_at) filter (where m.is_use), max(m.occurred_at) filter (where m.is_use)
    from tally._analytics_deltas(from_at, to_at) m
   cross join tally.dimensions d
   cross join lateral (select tally._dimension_value(d.keys, m.kind, m.attributes, nullif(m.plan, '')) as value) v
   where v.value is not null
     and (only_dimension is null or d.name = only_dimension)
   group by 1, 2, 3, 4, 5, 6
$$;

comment on function tally._analytics_delta_values(timestamptz, timestamptz, text) is
  'Pending deltas of the whole UTC days of [from_at, to_at) and raw log rows of its partial days, folded per user, UTC day, plan, dimension (all, or only_dimension), value and kind exactly as tally._apply_admin folds a merge batch into tally.user_daily_values (internal).';

-- >>> functions/0817_analytics_delta_ops.sql
-- The deltas of [from_at, to_at) the day tables do not hold, folded like tally.user_daily_ops rows (per user, UTC day, plan, kind, format).
-- Called by the admin materialized views and the admin reads over a range, next to the rows of tally.user_daily_ops.
create or replace function tally._analytics_delta_ops(from_at timestamptz, to_at timestamptz)
returns table (user_id text, day date, plan text, kind text, format text, succeeded bigint, failed bigint,
               timed_events bigint, duration_ms numeric, billable_cost numeric)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- The same folding as tally._apply_admin applies to a merge batch.
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, m.plan, m.kind,
         coalesce(left(m.attributes ->> 'format', 64), ''),
         (count(*) filter (where m.is_use))::bigint, sum(m.failures)::bigint,
         (count(*) filter (where m.is_use and m.timed_events = 1))::bigint,
         coalesce(sum(m.duration_ms) filter (where m.is_use and m.timed_events = 1), 0)::numeric,
         coalesce(sum(m.cost) filter (where m.billable), 0)
    from tally._analytics_deltas(from_at, to_at) m
   where m.is_use or m.failures <> 0 or (m.billable and m.cost <> 0)
   group by 1, 2, 3, 4, 5
$$;

comment on function tally._analytics_delta_ops(timestamptz, timestamptz) is
  'Pending deltas of the whole UTC days of [from_at, to_at) and raw log rows of its partial days, folded per user, UTC day, plan, kind and format exactly as tally._apply_admin folds a merge batch into tally.user_daily_ops (internal).';

-- >>> functions/0819_analytics_values.sql
-- Platform totals per plan, dimension and value over a window [from_at, to_at): usage, its unit and distinct users.
-- Called by tally.admin_totals_mv (the named windows, at refresh) and by tally.admin_totals / tally.admin_leaderboard (a range of days).
create or replace function tally._analytics_values(from_at timestamptz, to_at timestamptz, only_dimension text default null,
                                                   only_plan text default null)
returns table (plan text, dimension text, value text, events bigint, succeeded bigint, failures bigint, quantity numeric,
               unit text, duration_ms numeric, timed_events bigint, cost numeric, billable_cost numeric, users bigint,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  return query
  with rows as (
    -- Whole UTC days from the merged day table, the rest (pending deltas, partial days) folded alike.
    select v.user_id, v.plan, v.dimension, v.value, v.kind, v.events, v.succeeded, v.failures, v.quantity,
           v.duration_ms, v.timed_events, v.cost, v.billable_cost
      from tally.user_daily_values v
     where v.day >= s.first_day and v.day < s.end_day
       and (only_dimension is null or v.dimension = only_dimension)
       and (only_plan is null or v.plan = only_plan)
    union all
    select d.user_id, d.plan, d.dimension, d.value, d.kind, d.events, d.succeeded, d.failures, d.quantity,
           d.duration_ms, d.timed_events, d.cost, d.billable_cost
      from tally._analytics_delta_values(from_at, to_at, only_dimension) d
     where only_plan is null or d.plan = only_plan
  ), units as (
    -- The unit of each row's quantity (tally.kinds; a kind never declared counts in a unit of its own).
    select r.*, coalesce(k.unit, r.kind) as unit
      from rows r
      left join tally.kinds k on k.kind = r.kind
  ), per_user as (
    -- One row per user and group, so users are counted once per group (plan '*' = every plan).
    select case when grouping(r.plan) = 1 then '*' else r.plan end as plan, r.dimension, r.value,
           sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
           sum(r.quantity) as quantity, sum(r.duration_ms) as duration_ms, sum(r.timed_events) as timed_events,
           sum(r.cost) as cost, sum(r.billable_cost) as billable_cost,
           min(r.unit) filter (where r.quantity <> 0) as lo, max(r.unit) filter (where r.quantity <> 0) as hi,
           min(r.unit) as lo_any, max(r.unit) as hi_any,
           -- A user of a value: a succeeded or failed event of it in the window.
           sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
      from units r
     group by grouping sets ((r.plan, r.dimension, r.value, r.user_id), (r.dimension, r.value, r.user_id))
  ), groups as (
    select u.plan, u.dimension, u.value, sum(u.events)::bigint as events, sum(u.succeeded)::bigint as succeeded,
           sum(u.failures)::bigint as failures, sum(u.quantity) as quantity, min(u.lo) as lo, max(u.hi) as hi,
           min(u.lo_any) as lo_any, max(u.hi_any) as hi_any, sum(u.duration_ms) as duration_ms,
           sum(u.timed_events)::bigint as timed_events, sum(u.cost) as cost, sum(u.billable_cost) as billable_cost,
           count(*) filter (where u.active) as users
      from per_user u
     group by u.plan, u.dimension, u.value
  )
  -- Quantities of kinds of different units are never added: the quantity is NULL then.
  select g.plan, g.dimension, g.value, g.events, g.succeeded, g.failures,
         case when g.lo is distinct from g.hi then null else g.quantity end,
         case when g.lo is distinct from g.hi then null when g.lo is not null then g.lo
              when g.lo_any = g.hi_any then g.lo_any end,
         g.duration_ms, g.timed_events, g.cost, g.billable_cost, g.users, s.window_start, s.window_end
    from groups g;
end
$$;

comment on function tally._analytics_values(timestamptz, timestamptz, text, text) is
  'Platform totals over [from_at, to_at) per plan in force (''*'' = all plans, '''' = none), declared dimension and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (both NULL when the value''s non-zero quantities count in different units: they are never added), duration, timed events, cost, billable cost and users (with a succeeded or failed event of the value in the window); window_start/window_end = the window read (see tally._analytics_span). Internal: no minimum group size applied.';

-- >>> functions/0820_duration_bucket.sql
-- The log-scale histogram bucket of a duration: floor(8 * log2(ms)), -1 for 0 ms (8 buckets per doubling, <= 4.4% error).
-- Called by the merge applier tally._apply_admin for every timed succeeded event.
--
-- Not pinned to a search_path on purpose, so it is inlined in the merge (like
-- tally._dimension_value): it names only pg_catalog functions and operators.
create or replace function tally._duration_bucket(ms bigint)
returns smallint
language sql
immutable
parallel safe
as $$
  select case when ms OPERATOR(pg_catalog.<) 1 then -1
              else pg_catalog.floor(pg_catalog.ln(ms::pg_catalog.float8) OPERATOR(pg_catalog.*) 8::pg_catalog.float8
                                    OPERATOR(pg_catalog./) pg_catalog.ln(2::pg_catalog.float8)
                                    OPERATOR(pg_catalog.+) 1e-9::pg_catalog.float8)
         end::pg_catalog.int2
$$;

comment on function tally._duration_bucket(bigint) is
  'Histogram bucket of a duration in ms: floor(8 * log2(ms)) (bucket b holds [2^(b/8), 2^((b+1)/8)) ms), -1 for 0 ms.';

-- >>> functions/0821_duration_bucket_ms.sql
-- The duration a histogram bucket stands for: its geometric midpoint 2^((b + 0.5) / 8) ms, rounded (0 for bucket -1).
-- Called by tally.admin_reliability_mv to turn percentile buckets into milliseconds.
create or replace function tally._duration_bucket_ms(bucket smallint)
returns bigint
language sql
immutable
parallel safe
as $$
  select case when bucket OPERATOR(pg_catalog.<) 0 then 0
              else pg_catalog.round(pg_catalog.power(2::pg_catalog.float8,
                     (bucket::pg_catalog.float8 OPERATOR(pg_catalog.+) 0.5::pg_catalog.float8)
                     OPERATOR(pg_catalog./) 8::pg_catalog.float8))
         end::pg_catalog.int8
$$;

comment on function tally._duration_bucket_ms(smallint) is
  'Representative duration in ms of a histogram bucket of tally._duration_bucket: the geometric midpoint, within 4.4% of every duration in the bucket.';

-- >>> functions/0822_analytics_overview.sql
-- Platform headline figures per plan over a window [from_at, to_at): users, events, attempts, duration, cost, first and last use.
-- Called by tally.admin_overview_mv (the named windows, at refresh) and by tally.admin_overview (a range of days).
create or replace function tally._analytics_overview(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns table (plan text, users bigint, events bigint, succeeded bigint, failures bigint, duration_ms numeric,
               cost numeric, billable_cost numeric, first_at timestamptz, last_at timestamptz,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  return query
  with rows as (
    -- Every event has a kind, so the kind rows hold all the usage exactly once.
    select v.user_id, v.plan, v.events, v.succeeded, v.failures, v.duration_ms, v.cost, v.billable_cost,
           v.first_at, v.last_at
      from tally.user_daily_values v
     where v.dimension = 'kind' and v.day >= s.first_day and v.day < s.end_day
       and (only_plan is null or v.plan = only_plan)
    union all
    select d.user_id, d.plan, d.events, d.succeeded, d.failures, d.duration_ms, d.cost, d.billable_cost,
           d.first_at, d.last_at
      from tally._analytics_delta_values(from_at, to_at, 'kind') d
     where only_plan is null or d.plan = only_plan
  ), per_user as (
    select case when grouping(r.plan) = 1 then '*' else r.plan end as plan,
           sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
           sum(r.duration_ms) as duration_ms, sum(r.cost) as cost, sum(r.billable_cost) as billable_cost,
           min(r.first_at) as first_at, max(r.last_at) as last_at,
           sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
      from rows r
     group by grouping sets ((r.plan, r.user_id), (r.user_id))
  ), totals as (
    select u.plan, count(*) filter (where u.active) as users, sum(u.events)::bigint as events,
           sum(u.succeeded)::bigint as succeeded, sum(u.failures)::bigint as failures, sum(u.duration_ms) as duration_ms,
           sum(u.cost) as cost, sum(u.billable_cost) as billable_cost, min(u.first_at) as first_at,
           max(u.last_at) as last_at
      from per_user u
     group by u.plan
  )
  select t.plan, t.users, t.events, t.succeeded, t.failures, t.duration_ms, t.cost, t.billable_cost, t.first_at,
         t.last_at, s.window_start, s.window_end
    from totals t
  union all
  -- The whole platform has a row even in a window without usage.
  select '*', 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::numeric, 0::numeric, 0::numeric, null::timestamptz,
         null::timestamptz, s.window_start, s.window_end
   where not exists (select from totals t where t.plan = '*');
end
$$;

comment on function tally._analytics_overview(timestamptz, timestamptz, text) is
  'Platform headline figures over [from_at, to_at) per plan in force (''*'' = all plans, always present; '''' = none): users (with a succeeded or failed event), events (net of reversals), succeeded attempts, failures, duration, cost, billable cost, first and last use; window_start/window_end = the window read (see tally._analytics_span). Internal: no minimum group size applied.';

-- >>> functions/0823_analytics_reliability.sql
-- Reliability per plan, kind and format over a window [from_at, to_at): attempts, success rate inputs, durations and percentile buckets.
-- Called by tally.admin_reliability_mv (the named windows, at refresh) and by tally.admin_reliability (a range of days).
create or replace function tally._analytics_reliability(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns table (plan text, kind text, format text, succeeded bigint, failed bigint, timed_events bigint,
               duration_ms numeric, p50_bucket smallint, p95_bucket smallint, p99_bucket smallint, users bigint,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  return query
  with ops as (
    select o.user_id, o.plan, o.kind, o.format, o.succeeded, o.failed, o.timed_events, o.duration_ms
      from tally.user_daily_ops o
     where o.day >= s.first_day and o.day < s.end_day and (only_plan is null or o.plan = only_plan)
    union all
    select d.user_id, d.plan, d.kind, d.format, d.succeeded, d.failed, d.timed_events, d.duration_ms
      from tally._analytics_delta_ops(from_at, to_at) d
     where only_plan is null or d.plan = only_plan
  ), per_user as (
    -- Groups: plan (or '*' = every plan) by kind and format (or '*' = every format).
    select case when grouping(o.plan) = 1 then '*' else o.plan end as plan, o.kind,
           case when grouping(o.format) = 1 then '*' else o.format end as format,
           sum(o.succeeded) as succeeded, sum(o.failed) as failed, sum(o.timed_events) as timed_events,
           sum(o.duration_ms) as duration_ms, sum(o.succeeded) > 0 or sum(o.failed) > 0 as active
      from ops o
     group by grouping sets ((o.plan, o.kind, o.format, o.user_id), (o.plan, o.kind, o.user_id),
                             (o.kind, o.format, o.user_id), (o.kind, o.user_id))
  ), attempts as (
    select u.plan, u.kind, u.format, sum(u.succeeded)::bigint as succeeded, sum(u.failed)::bigint as failed,
           sum(u.timed_events)::bigint as timed_events, sum(u.duration_ms) as duration_ms,
           -- Distinct users with an attempt: the admin function hides smaller groups than the minimum.
           count(*) filter (where u.active) as users
      from per_user u
     group by u.plan, u.kind, u.format
  ), buckets as (
    select h.plan, h.kind, h.format, h.bucket, h.events
      from tally.user_daily_durations h
     where h.day >= s.first_day and h.day < s.end_day and (only_plan is null or h.plan = only_plan)
    union all
    select m.plan, m.kind, coalesce(left(m.attributes ->> 'format', 64), ''), tally._duration_bucket(m.duration_ms), 1
      from tally._analytics_deltas(from_at, to_at) m
     where m.is_use and m.timed_events = 1 and (only_plan is null or m.plan = only_plan)
  ), histogram as (
    select case when grouping(b.plan) = 1 then '*' else b.plan end as plan, b.kind,
           case when grouping(b.format) = 1 then '*' else b.format end as format, b.bucket, sum(b.events) as n
      from buckets b
     group by grouping sets ((b.plan, b.kind, b.format, b.bucket), (b.plan, b.kind, b.bucket),
                             (b.kind, b.format, b.bucket), (b.kind, b.bucket))
  ), cumulative as (
    select h.*, sum(h.n) over (partition by h.plan, h.kind, h.format order by h.bucket) as below,
           sum(h.n) over (partition by h.plan, h.kind, h.format) as total
      from histogram h
  ), percentiles as (
    -- Nearest rank: the first bucket whose cumulative count reaches q * total.
    select c.plan, c.kind, c.format,
           min(c.bucket) filter (where c.below >= 0.50 * c.total) as p50,
           min(c.bucket) filter (where c.below >= 0.95 * c.total) as p95,
           min(c.bucket) filter (where c.below >= 0.99 * c.total) as p99
      from cumulative c
     group by c.plan, c.kind, c.format
  )
  select a.plan, a.kind, a.format, a.succeeded, a.failed, a.timed_events, a.duration_ms, p.p50, p.p95, p.p99, a.users,
         s.window_start, s.window_end
    from attempts a
    left join percentiles p on p.plan = a.plan and p.kind = a.kind and p.format = a.format;
end
$$;

comment on function tally._analytics_reliability(timestamptz, timestamptz, text) is
  'Reliability over [from_at, to_at) per plan in force (''*'' = all plans, '''' = none), kind and format (''*'' = all formats): succeeded and failed attempts, timed events and their total duration, the histogram buckets of the p50/p95/p99 durations, users with an attempt; window_start/window_end = the window read (see tally._analytics_span). Internal: no minimum group size applied.';

-- >>> functions/0824_analytics_error_codes.sql
-- Failed events per plan, kind, format and error code over a window [from_at, to_at), from the retained raw log.
-- Called by tally.admin_error_codes_mv (the named windows, at refresh) and by tally.admin_error_codes (a range of days).
create or replace function tally._analytics_error_codes(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns table (plan text, kind text, format text, error_code text, failures bigint, users bigint, last_at timestamptz,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Pending deltas and the rollups do not carry error_code: only the retained log does,
  -- so the window read starts no earlier than the retained log.
  since timestamptz := greatest(from_at,
                                coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r),
                                         '-infinity'::timestamptz));
begin
  return query
  with failed as (
    select e.user_id, coalesce(e.plan, '') as plan, e.kind, coalesce(left(e.attributes ->> 'format', 64), '') as format,
           coalesce(e.error_code, '') as error_code, e.occurred_at
      from tally.usage_events e
     where e.status = 'failed' and e.occurred_at >= since and e.occurred_at < to_at
       and (only_plan is null or coalesce(e.plan, '') = only_plan)
  )
  select case when grouping(f.plan) = 1 then '*' else f.plan end, f.kind,
         case when grouping(f.format) = 1 then '*' else f.format end, f.error_code,
         count(*), count(distinct f.user_id), max(f.occurred_at), since, to_at
    from failed f
   group by grouping sets ((f.plan, f.kind, f.format, f.error_code), (f.plan, f.kind, f.error_code),
                           (f.kind, f.format, f.error_code), (f.kind, f.error_code));
end
$$;

comment on function tally._analytics_error_codes(timestamptz, timestamptz, text) is
  'Failed events over [from_at, to_at) of the retained raw log per plan in force (''*'' = all plans, '''' = none), kind, format (''*'' = all formats) and error_code ('''' = none): failures, distinct users, last failure; window_start = from_at or the start of the retained log when later. Internal: no minimum group size applied.';

-- >>> functions/0825_analytics_windows.sql
-- The named timeframes of the admin analytics: the 24 hours, 7 days and 30 days ending at `at`, and all time before it.
-- Called by the admin materialized views at refresh time (at = the start of the refresh call).
create or replace function tally._analytics_windows(at timestamptz)
returns table (time_window text, from_at timestamptz, to_at timestamptz)
language sql
immutable
rows 4
set search_path = pg_catalog, pg_temp
as $$
  -- Rolling windows of exact instants [at - length, at): 24h is the last 24 hours,
  -- not "since yesterday midnight".
  select w.name, _analytics_windows.at - w.length, _analytics_windows.at
    from (values (1, '24h', interval '24 hours'), (2, '7d', interval '7 days'), (3, '30d', interval '30 days')) as w(n, name, length)
  union all
  select 'all', '-infinity'::timestamptz, _analytics_windows.at
$$;

comment on function tally._analytics_windows(timestamptz) is
  'The analytics timeframes ending at `at` (the views pass the start of the refresh): 24h = [at - 24 hours, at), 7d = [at - 7 days, at), 30d = [at - 30 days, at), all = everything before at (internal).';

-- >>> functions/0826_analytics_views.sql
-- The analytics materialized views (the admin views and the users' peer distribution), in refresh order.
-- Called by tally.refresh_analytics and tally.analytics_freshness (the one list to extend with a new view).
create or replace function tally._analytics_views()
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select array['admin_totals_mv', 'admin_overview_mv', 'admin_daily_mv', 'admin_activity_mv', 'admin_leaderboards_mv',
               'admin_reliability_mv', 'admin_error_codes_mv', 'admin_cohorts_mv', 'peer_distribution_mv']
$$;

comment on function tally._analytics_views() is
  'Names of the analytics materialized views in the tally schema (the admin views, then the peer distribution), in refresh order (internal).';

-- >>> functions/0827_check_window.sql
-- Validates an analytics timeframe name (24h, 7d, 30d, all) and returns it; raises PT011 naming the argument otherwise.
-- Called by the admin read functions that take a time_window.
create or replace function tally._check_window(time_window text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if time_window is null or time_window not in ('24h', '7d', '30d', 'all') then
    raise exception using errcode = 'PT011', column = 'time_window',
      message = format('time_window must be one of 24h, 7d, 30d, all (got %L)', time_window);
  end if;
  return time_window;
end
$$;

comment on function tally._check_window(text) is
  'Returns time_window when it is 24h, 7d, 30d or all; raises PT011 otherwise (internal).';

-- >>> functions/0828_refreshed_at.sql
-- When the data of one admin materialized view were taken (start of its last refresh), NULL if never refreshed.
-- Called by every admin read function to report freshness.
create or replace function tally._refreshed_at(view_name text)
returns timestamptz
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select max(l.started_at) from tally.refresh_log l where l.view_name = _refreshed_at.view_name
$$;

comment on function tally._refreshed_at(text) is
  'Start of the last logged refresh of an admin materialized view (the moment its data reflect), NULL when never refreshed (internal).';

-- >>> functions/0829_analytics_min_group_size.sql
-- The minimum group size in force (tally.analytics_settings, default 5): groups of fewer distinct users are not shown.
-- Called by the admin read functions (as the owner) and by the peer distribution view at refresh.
create or replace function tally._analytics_min_group_size()
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select s.min_group_size from tally.analytics_settings s), 5)
$$;

comment on function tally._analytics_min_group_size() is
  'The minimum number of distinct users a group must have to be shown to analysts or published in a peer distribution (tally.analytics_settings, default 5; 1 = show every group) (internal, owner only).';

-- >>> functions/0840_funnel_next.sql
-- The earliest succeeded original event of a kind by a user in [from_at, to_at) (of one plan in force, or any), or NULL: one funnel step.
-- Called by tally.admin_funnel only (per user and step); reads the days of the timeframe, never the whole history.
create or replace function tally._funnel_next(user_id text, kind text, from_at timestamptz, to_at timestamptz,
                                              only_plan text default null)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select t
    from (
      select least(
        -- Merged: the first day at or after from_at with a use at or after from_at.
        -- Its first use is the answer when it is not before from_at; otherwise
        -- from_at falls inside that day's uses and the answer lies in
        -- [from_at, last_at]: read that stretch of the user's log (by the index
        -- on user and time). Where retention dropped it, last_at is the best
        -- known bound (a later, so stricter, step time). A day has one row per
        -- plan in force: with no plan filter they are taken together.
        (select case when min(d.first_at) >= _funnel_next.from_at then min(d.first_at)
                     else coalesce((select min(e.occurred_at)
                                      from tally.usage_events e
                                     where e.user_id = _funnel_next.user_id
                                       and e.occurred_at >= _funnel_next.from_at and e.occurred_at <= max(d.last_at)
                                       and e.kind = _funnel_next.kind and e.status = 'succeeded'
                                       and e.corrects_event_id is null
                                       and (only_plan is null or coalesce(e.plan, '') = only_plan)),
                                   min(case when d.first_at >= _funnel_next.from_at then d.first_at else d.last_at end))
                end
           from tally.user_kind_days d
          where d.user_id = _funnel_next.user_id and d.kind = _funnel_next.kind
            and d.day >= (_funnel_next.from_at at time zone 'UTC')::date
            and d.day <= (_funnel_next.to_at at time zone 'UTC')::date
            and d.last_at >= _funnel_next.from_at
            and (only_plan is null or d.plan = only_plan)
          group by d.day
          order by d.day
          limit 1),
        -- Pending (not yet merged) uses: exact at commit.
        (select min(p.occurred_at)
           from tally.pending_deltas p
          where p.user_id = _funnel_next.user_id and p.kind = _funnel_next.kind and p.is_use
            and p.occurred_at >= _funnel_next.from_at and p.occurred_at < _funnel_next.to_at
            and (only_plan is null or coalesce(p.plan, '') = only_plan))) as t
    ) x
   where x.t < _funnel_next.to_at
  );
end
$$;

comment on function tally._funnel_next(text, text, timestamptz, timestamptz, text) is
  'Earliest succeeded original event of a kind by a user in [from_at, to_at) (NULL when none), only of events recorded under only_plan when given: from tally.user_kind_days plus pending deltas, reading the user''s log only within one day when from_at falls between that day''s first and last use (internal; called by tally.admin_funnel).';

-- >>> functions/0841_paying_users.sql
-- Paying users over a span of time: distinct users with a subscription at a monthly price above zero (to one plan, or any) in force at some moment of [from_at, to_at).
-- Called by tally.admin_overview (over its window) and tally.admin_week_over_week (per window of weeks).
create or replace function tally._paying_users(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  -- A subscription is in force over [started_at, ended_at); it overlaps [from_at, to_at)
  -- when it starts before to_at and has not ended by from_at. Subscriptions are few
  -- (one row per plan change), so this reads them at call time: exact, no refresh.
  select count(distinct s.user_id)
    from tally.subscriptions s
   where s.monthly_price > 0
     and s.started_at < _paying_users.to_at
     and (s.ended_at is null or s.ended_at > _paying_users.from_at)
     and (only_plan is null or s.plan = only_plan)
  );
end
$$;

comment on function tally._paying_users(timestamptz, timestamptz, text) is
  'Distinct users holding a subscription with monthly_price > 0 (the price fixed when it started; to only_plan when given) in force at some moment of [from_at, to_at); users on the default plan without a subscription never count (internal; read by the admin functions).';

-- >>> functions/0842_paying_users_by_day.sql
-- Paying users (of one plan, or any) per UTC day and in the 7 and 30 days ending each day, from the subscriptions, for a range of days.
-- Called by tally.admin_active_users (the series behind the "paying" trend).
create or replace function tally._paying_users_by_day(from_day date, to_day date, only_plan text default null)
returns table (day date, paying_users bigint, paying_users_7d bigint, paying_users_30d bigint)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return query
  -- Each paid subscription is in force on the UTC days [a, b]; a user counts in the
  -- n-day window ending d when one of their subscriptions has a <= d < b + n. Per
  -- user, sorted by a, the pieces [a, least(running max of b + n, next a)) are
  -- disjoint and cover exactly those days, so a running sum of +1 at starts and -1
  -- at ends counts distinct users per day and window in one pass (no self-join).
  -- Days are clamped to the range (and the 29 days before it, for the windows).
  with subs as (
    select s.user_id,
           greatest((s.started_at at time zone 'UTC')::date, _paying_users_by_day.from_day - 29) as a,
           least(coalesce(((s.ended_at - interval '1 microsecond') at time zone 'UTC')::date, _paying_users_by_day.to_day),
                 _paying_users_by_day.to_day) as b
      from tally.subscriptions s
     where s.monthly_price > 0
       and s.started_at < (_paying_users_by_day.to_day + 1)::timestamp at time zone 'UTC'
       and (s.ended_at is null or s.ended_at > (_paying_users_by_day.from_day - 29)::timestamp at time zone 'UTC')
       and (only_plan is null or s.plan = only_plan)
  ), spans as (
    select u.a,
           max(u.b) over (partition by u.user_id order by u.a, u.b rows unbounded preceding) as b_max,
           lead(u.a) over (partition by u.user_id order by u.a, u.b) as next_a
      from subs u
  ), changes (day, d1, d7, d30) as (
    select x.a, 1, 1, 1 from spans x
    union all
    select least(x.b_max + 1, coalesce(x.next_a, x.b_max + 1)), -1, 0, 0 from spans x
    union all
    select least(x.b_max + 7, coalesce(x.next_a, x.b_max + 7)), 0, -1, 0 from spans x
    union all
    select least(x.b_max + 30, coalesce(x.next_a, x.b_max + 30)), 0, 0, -1 from spans x
  ), deltas as (
    select c.day, sum(c.d1) as d1, sum(c.d7) as d7, sum(c.d30) as d30
      from changes c
     group by c.day
  ), running as (
    select g.day::date as day,
           sum(coalesce(c.d1, 0)) over w as d1, sum(coalesce(c.d7, 0)) over w as d7,
           sum(coalesce(c.d30, 0)) over w as d30
      from generate_series((_paying_users_by_day.from_day - 29)::timestamp, _paying_users_by_day.to_day::timestamp,
                           interval '1 day') as g (day)
      left join deltas c on c.day = g.day::date
    window w as (order by g.day)
  )
  select r.day, r.d1::bigint, r.d7::bigint, r.d30::bigint
    from running r
   where r.day >= _paying_users_by_day.from_day
   order by r.day;
end
$$;

comment on function tally._paying_users_by_day(date, date, text) is
  'Per UTC day of [from_day, to_day]: distinct users with a subscription at monthly_price > 0 (to only_plan when given) in force at some moment of that day, and of the 7 and 30 days ending it (internal; read by tally.admin_active_users).';

-- >>> functions/0843_analytics_range.sql
-- Resolves the timeframe of an admin read: a named window (24h, 7d, 30d, all; default_window when none is given) or the UTC days [from_day, to_day).
-- Called by the admin read functions that take a time_window or a range of days; raises PT011 naming the argument.
create or replace function tally._analytics_range(time_window text, from_day date, to_day date, default_window text)
returns table (window_name text, range_start timestamptz, range_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if from_day is null and to_day is null then
    -- A named window: read from the materialized view of that window.
    return query select tally._check_window(coalesce(_analytics_range.time_window, default_window)),
                        null::timestamptz, null::timestamptz;
    return;
  elsif _analytics_range.time_window is not null then
    raise exception using errcode = 'PT011', column = 'time_window',
      message = format('give either time_window (got %L) or from_day and to_day, not both', _analytics_range.time_window);
  elsif from_day is null or to_day is null then
    raise exception using errcode = 'PT011', column = case when from_day is null then 'from_day' else 'to_day' end,
      message = format('from_day and to_day go together: the range is the UTC days [from_day, to_day) (got %s to %s)',
                       coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  elsif to_day <= from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('to_day (%s) must be after from_day (%s): the range is the UTC days [from_day, to_day)',
                       to_day, from_day);
  elsif from_day = '-infinity' or to_day = 'infinity' then
    raise exception using errcode = 'PT011', column = case when from_day = '-infinity' then 'from_day' else 'to_day' end,
      message = 'from_day and to_day must be dates (use time_window => ''all'' for all time)';
  end if;
  -- A range of whole UTC days: computed at call time from the per-user day tables.
  return query select null::text, from_day::timestamp at time zone 'UTC', to_day::timestamp at time zone 'UTC';
end
$$;

comment on function tally._analytics_range(text, date, date, text) is
  'The timeframe of an admin read: (window_name, NULL, NULL) for a named window (time_window, else default_window), or (NULL, range_start, range_end) for the UTC days [from_day, to_day); raises PT011 naming the argument for an unknown window, a window and days together, one day without the other, or to_day not after from_day (internal).';

-- >>> functions/0844_analytics_plan.sql
-- Validates the plan filter of an admin read: NULL (every event), a plan of tally.plans or of recorded events, or '' (events with no plan in force).
-- Called by the admin read functions; raises PT011 naming the argument for an unknown plan.
create or replace function tally._analytics_plan(plan text)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A plan of tally.plans, or one events were recorded under (a plan removed since, as of the last refresh).
  if plan is not null and plan <> ''
     and not exists (select from tally.plans p where p.plan = _analytics_plan.plan)
     and not exists (select from tally.admin_overview_mv o where o.time_window = 'all' and o.plan = _analytics_plan.plan) then
    raise exception using errcode = 'PT011', column = 'plan',
      message = format('plan %L is not a plan of tally.plans (NULL = every plan, '''' = events with no plan in force)', plan);
  end if;
  return plan;
end
$$;

comment on function tally._analytics_plan(text) is
  'Returns the plan filter of an admin read when it is NULL (every event), '''' (events recorded with no plan in force), a plan of tally.plans or a plan events were recorded under (as of the last refresh); raises PT011 otherwise (internal).';

-- >>> functions/0850_refresh_analytics.sql
-- Refreshes every admin materialized view CONCURRENTLY (readers are never blocked) and logs each one in tally.refresh_log.
-- Called by pg_cron (tally.schedule_refresh), `pgtally refresh` and the demo; one at a time (a second caller returns 'skipped').
create or replace function tally.refresh_analytics()
returns table (view_name text, status text, started_at timestamptz, finished_at timestamptz, duration_ms numeric,
               row_count bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- The views' days are UTC days whoever refreshes them, whatever the session's time zone.
set timezone = 'UTC'
-- JIT compilation costs more than it saves on these aggregates (about 0.7 s per view).
set jit = off
as $$
#variable_conflict use_column
declare
  run_started timestamptz := clock_timestamp();
  v           text;
  t0          timestamptz;
  t1          timestamptz;
  n           bigint;
begin
  -- SECURITY DEFINER: only the owner of a materialized view may refresh it.
  -- Never two at once: a second caller does not queue behind a long refresh,
  -- it returns one row with status 'skipped' at once.
  if not tally._lock('refresh', wait => false) then
    raise notice 'pgtally: another refresh of the analytics is running; skipped';
    return query select null::text, 'skipped'::text, run_started, clock_timestamp(), 0::numeric, null::bigint;
    return;
  end if;
  -- CONCURRENTLY: readers keep reading the previous contents (the refresh takes
  -- an EXCLUSIVE lock, which does not conflict with SELECT). All views switch
  -- over together when the caller's transaction commits.
  foreach v in array tally._analytics_views() loop
    t0 := clock_timestamp();
    execute pg_catalog.format('refresh materialized view concurrently tally.%I', v);
    t1 := clock_timestamp();
    execute pg_catalog.format('select count(*) from tally.%I', v) into n;
    insert into tally.refresh_log (run_started, view_name, started_at, finished_at, duration_ms, row_count)
    values (run_started, v, t0, t1, round(extract(epoch from t1 - t0) * 1000, 1), n);
    return query select v, 'refreshed'::text, t0, t1, round(extract(epoch from t1 - t0) * 1000, 1), n;
  end loop;
  delete from tally.refresh_log l where l.started_at < now() - interval '30 days';
end
$$;

comment on function tally.refresh_analytics() is
  'Refreshes every admin materialized view concurrently (readers never wait) in one transaction and logs start, end, duration and rows per view in tally.refresh_log; returns one row per view. Never runs twice at once: a second caller gets one row with status ''skipped'' (view_name NULL) at once. Merge pending deltas first (`pgtally refresh` does): the views read the merged rollups.';

-- >>> functions/0851_analytics_freshness.sql
-- How fresh each admin materialized view is: when its data were taken, how long the refresh took, its age now.
-- Called by dashboards, `pgtally admin` and monitoring (alert when age exceeds the schedule).
create or replace function tally.analytics_freshness()
returns table (view_name text, refreshed_at timestamptz, finished_at timestamptz, duration_ms numeric, row_count bigint,
               age interval)
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  select v.name, l.started_at, l.finished_at, l.duration_ms, l.row_count, clock_timestamp() - l.started_at
    from unnest(tally._analytics_views()) with ordinality as v(name, n)
    left join lateral (
      select r.started_at, r.finished_at, r.duration_ms, r.row_count
        from tally.refresh_log r
       where r.view_name = v.name
       order by r.started_at desc
       limit 1) as l on true
   order by v.n
$$;

comment on function tally.analytics_freshness() is
  'Per admin materialized view: refreshed_at (when its data were taken; NULL = never refreshed), finished_at, duration_ms and row_count of its last refresh, and its age now.';

-- >>> functions/0852_interval_to_cron.sql
-- Converts a refresh interval into pg_cron 1.4 cron syntax ('5 minutes' -> '*/5 * * * *'); raises PT011 when cron cannot express it evenly.
-- Called by tally.schedule_refresh.
create or replace function tally._interval_to_cron(every interval)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  secs    numeric := extract(epoch from every);
  minutes integer;
begin
  if secs is null or secs < 60 or secs % 60 <> 0
     or (secs < 3600 and 3600 % secs <> 0)
     or (secs >= 3600 and (secs % 3600 <> 0 or (secs < 86400 and 86400 % secs <> 0) or secs > 86400)) then
    raise exception using errcode = 'PT011', column = 'every',
      message = format('every must be a whole number of minutes dividing an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 min) '
                       'or of hours dividing a day (1, 2, 3, 4, 6, 8, 12, 24 h) to map onto cron syntax (got %s)',
                       coalesce(every::text, 'null'));
  end if;
  minutes := (secs / 60)::integer;
  return case
    when minutes = 1 then '* * * * *'
    when minutes < 60 then format('*/%s * * * *', minutes)
    when minutes = 60 then '0 * * * *'
    when minutes = 1440 then '0 0 * * *'
    else format('0 */%s * * *', minutes / 60)
  end;
end
$$;

comment on function tally._interval_to_cron(interval) is
  'Cron syntax (pg_cron 1.4 takes no seconds) for a refresh interval that divides an hour or a day evenly; raises PT011 otherwise (internal).';

-- >>> functions/0853_schedule_refresh.sql
-- Schedules tally.refresh_analytics() with pg_cron (job 'pgtally-refresh', replaced when it exists) every `every`.
-- Called once by a DBA; without pg_cron it raises 55000 with the crontab line for `pgtally refresh` in the hint.
create or replace function tally.schedule_refresh(every interval default interval '5 minutes')
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  spec text := tally._interval_to_cron(every);
  job  bigint;
begin
  if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise exception using errcode = '55000',
      message = 'pg_cron is not installed in this database, so tally.schedule_refresh cannot schedule the refresh',
      hint = format('Run the CLI from cron instead, e.g. this crontab line: %s DATABASE_URL=postgresql://... pgtally refresh  '
                    '(or CREATE EXTENSION pg_cron, with pg_cron in shared_preload_libraries and cron.database_name set to this database).',
                    spec);
  end if;
  -- cron.schedule with a job name replaces an existing job of that name (pg_cron >= 1.3).
  execute 'select cron.schedule($1, $2, $3)' into job
    using 'pgtally-refresh', spec, 'select tally.refresh_analytics()';
  return format('scheduled pg_cron job %s ''pgtally-refresh'': %s select tally.refresh_analytics()', job, spec);
end
$$;

comment on function tally.schedule_refresh(interval) is
  'Schedules tally.refresh_analytics() every `every` with pg_cron (job ''pgtally-refresh'', cron syntax, so whole minutes dividing an hour or hours dividing a day) and returns a description. Without pg_cron raises SQLSTATE 55000 whose hint is the crontab line for `pgtally refresh`. Schedule tally.merge_pending() too: the views read merged rollups.';

-- >>> functions/0854_set_min_group_size.sql
-- Sets the minimum group size of the analyst-facing breakdowns and the peer distributions; 1 shows every group (the explicit opt-out).
-- Called by the owner (a DBA, the Python client's admin.set_min_group_size()); analysts and readers may not execute it.
create or replace function tally.set_min_group_size(min_users integer)
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  previous integer;
begin
  if min_users is null or min_users not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'min_users',
      message = format('min_users must be between 1 (show every group) and 1000 (got %s)',
                       coalesce(min_users::text, 'null'));
  end if;
  select s.min_group_size into previous from tally.analytics_settings s for update;
  insert into tally.analytics_settings as s (id, min_group_size, updated_at)
  values (true, min_users, now())
  on conflict (id) do update set min_group_size = excluded.min_group_size, updated_at = excluded.updated_at;
  return coalesce(previous, 5);
end
$$;

comment on function tally.set_min_group_size(integer) is
  'Sets the minimum number of distinct users a breakdown row must describe to be shown to analysts (at once) and a peer distribution must have to be published (at the next refresh); 1 shows every group. Returns the previous value. Owner only; PT011 outside 1..1000.';

-- >>> functions/0860_admin_overview.sql
-- Platform headline figures over a timeframe (24h, 7d, 30d, all, or UTC days [from_day, to_day)) and optionally one plan:
-- users, events, attempts and success rate, cost, paying users, averages. Called by dashboards, admin.overview() and `pgtally admin`.
create or replace function tally.admin_overview(time_window text default null, from_day date default null,
                                                to_day date default null, plan text default null)
returns table (users bigint, events bigint, succeeded bigint, failures bigint, success_rate numeric, duration_ms numeric,
               cost numeric, billable_cost numeric, paying_users bigint, avg_events_per_user numeric,
               avg_cost_per_user numeric, avg_cost_per_event numeric, first_at timestamptz, last_at timestamptz,
               window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  select * into r from tally._analytics_range(time_window, from_day, to_day, 'all');
  return query
  with o as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.users, m.events, m.succeeded, m.failures, m.duration_ms, m.cost, m.billable_cost, m.first_at, m.last_at,
           m.window_start, m.window_end, tally._refreshed_at('admin_overview_mv') as refreshed_at
      from tally.admin_overview_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
    union all
    select l.users, l.events, l.succeeded, l.failures, l.duration_ms, l.cost, l.billable_cost, l.first_at, l.last_at,
           l.window_start, l.window_end, statement_timestamp()
      from tally._analytics_overview(r.range_start, r.range_end, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  ), paying as (
    -- Paying users of the window (of the plan), read live from the subscriptions.
    select o.*, tally._paying_users(o.window_start, o.window_end, p) as paying from o
  )
  select o.users, o.events, o.succeeded, o.failures,
         round(100.0 * o.succeeded / nullif(o.succeeded + o.failures, 0), 2), o.duration_ms, o.cost, o.billable_cost,
         case when p is null or o.paying >= min_users or min_users <= 1 then o.paying else 0 end,
         round(o.events::numeric / nullif(o.users, 0), 2),
         round(o.cost / nullif(o.users, 0), 6),
         round(o.cost / nullif(o.events, 0), 6),
         o.first_at, o.last_at, nullif(o.window_start, '-infinity'), o.window_end, o.refreshed_at
    from paying o
   -- The whole platform is always shown; one plan is a group like any other: hidden (no row)
   -- when fewer users than the minimum group size used it in the window.
   where p is null or o.users >= min_users or min_users <= 1;
end
$$;

comment on function tally.admin_overview(text, date, date, text) is
  'Platform headline figures over a timeframe: a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all: everything before it; default all) as of refreshed_at, or the UTC days [from_day, to_day) computed at call time (refreshed_at = now); window_start/window_end say which (window_start NULL = from the beginning). users (with a succeeded or failed event), events (net of reversals), succeeded and failed attempts, success rate %, duration, cost, billable cost, averages per user and per event; paying_users (live): users with a subscription at a monthly price > 0 in force at some moment of the window. With plan: only events recorded under that plan (and its subscriptions); no row when fewer users than the minimum group size used it. Requires tally_analyst.';

-- >>> functions/0861_admin_totals.sql
-- Platform totals per value of one declared dimension (kind, model, provider, plan, ...) over a timeframe, optionally of one plan:
-- averages and cost shares. Called by dashboards, admin.totals() / admin.cost_breakdown() and `pgtally admin`.
create or replace function tally.admin_totals(dimension text default 'kind', time_window text default null,
                                              from_day date default null, to_day date default null,
                                              plan text default null)
returns table (value text, events bigint, failures bigint, quantity numeric, unit text, duration_ms numeric, cost numeric,
               users bigint,
               avg_quantity_per_event numeric, avg_duration_ms numeric, avg_cost_per_event numeric,
               avg_events_per_user numeric, avg_quantity_per_user numeric, avg_cost_per_user numeric,
               cost_share_pct numeric, window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  select * into r from tally._analytics_range(time_window, from_day, to_day, 'all');
  return query
  with t as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.value, m.events, m.failures, m.quantity, m.unit, m.duration_ms, m.timed_events, m.cost, m.users,
           m.window_start, m.window_end, tally._refreshed_at('admin_totals_mv') as refreshed_at
      from tally.admin_totals_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
       and m.dimension = admin_totals.dimension
    union all
    select l.value, l.events, l.failures, l.quantity, l.unit, l.duration_ms, l.timed_events, l.cost, l.users,
           l.window_start, l.window_end, statement_timestamp()
      from tally._analytics_values(r.range_start, r.range_end, admin_totals.dimension, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  )
  select t.value, t.events, t.failures, t.quantity, t.unit, t.duration_ms, t.cost, t.users,
         round(t.quantity / nullif(t.events, 0), 2),
         round(t.duration_ms / nullif(t.timed_events, 0)),
         round(t.cost / nullif(t.events, 0), 6),
         round(t.events::numeric / nullif(t.users, 0), 2),
         round(t.quantity / nullif(t.users, 0), 2),
         round(t.cost / nullif(t.users, 0), 6),
         round(100 * t.cost / nullif(sum(t.cost) over (), 0), 2),
         nullif(t.window_start, '-infinity'), t.window_end, t.refreshed_at
    from t
   -- Values used by fewer users than the minimum group size are left out (cost shares are of the values shown);
   -- with a plan, a value's users are its users on that plan.
   where t.users >= min_users or min_users <= 1
   order by t.events desc, t.value;
end
$$;

comment on function tally.admin_totals(text, text, date, date, text) is
  'Platform totals per value of a declared dimension (raises PT010 otherwise) over a timeframe: a named window (24h, 7d, 30d ending at the refresh; all, the default) as of refreshed_at, or the UTC days [from_day, to_day) at call time (refreshed_at = now); window_start/window_end say which. Events, failures, quantity and its unit (both NULL for a value whose quantities count in different units: never added), duration, cost, users; averages per event (duration per timed event) and per user; share of the cost of the values shown in %. With plan: only events recorded under that plan. Values with fewer users than the minimum group size (tally.analytics_settings) are left out. Requires tally_analyst.';

-- >>> functions/0862_admin_leaderboard.sql
-- Top values of a declared dimension (voices, models, templates) in a timeframe (24h, 7d, 30d, all, or UTC days), ranked by a metric.
-- Called by dashboards, admin.leaderboard() and `pgtally admin`.
create or replace function tally.admin_leaderboard(dimension text, time_window text default null,
                                                   metric text default 'events', max_rows integer default 10,
                                                   from_day date default null, to_day date default null,
                                                   plan text default null)
returns table ("rank" bigint, value text, events bigint, quantity numeric, unit text, duration_ms numeric, cost numeric,
               users bigint,
               window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  select * into r from tally._analytics_range(time_window, from_day, to_day, '7d');
  if metric is null or metric not in ('events', 'quantity', 'duration_ms', 'cost', 'users') then
    raise exception using errcode = 'PT011', column = 'metric',
      message = format('metric must be one of events, quantity, duration_ms, cost, users (got %L)', metric);
  elsif max_rows is null or max_rows not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'max_rows',
      message = format('max_rows must be between 1 and 1000 (got %s)', coalesce(max_rows::text, 'null'));
  end if;
  return query
  with l as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.value, m.events, m.quantity, m.unit, m.duration_ms, m.cost, m.users, m.window_start, m.window_end,
           tally._refreshed_at('admin_leaderboards_mv') as refreshed_at
      from tally.admin_leaderboards_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
       and m.dimension = admin_leaderboard.dimension
    union all
    select v.value, v.events, v.quantity, v.unit, v.duration_ms, v.cost, v.users, v.window_start, v.window_end,
           statement_timestamp()
      from tally._analytics_values(r.range_start, r.range_end, admin_leaderboard.dimension, p) v
     where r.window_name is null and v.plan = coalesce(p, '*')
  )
  select x.rnk, x.value, x.events, x.quantity, x.unit, x.duration_ms, x.cost, x.users, nullif(x.window_start, '-infinity'),
         x.window_end, x.refreshed_at
    from (select l.*, rank() over (order by s.score desc) as rnk
            from l
           cross join lateral (select case metric when 'events' then l.events::numeric
                                                  when 'quantity' then l.quantity::numeric
                                                  when 'duration_ms' then l.duration_ms::numeric
                                                  when 'cost' then l.cost
                                                  else l.users::numeric end as score) as s
           -- Values used by fewer users than the minimum group size are left out (before ranking).
           where (l.users >= min_users or min_users <= 1)
             and s.score > 0) as x
   order by x.rnk, x.value
   limit max_rows;
end
$$;

comment on function tally.admin_leaderboard(text, text, text, integer, date, date, text) is
  'Top max_rows values of a declared dimension in a timeframe ranked by metric (events, quantity, duration_ms, cost, users; ties share a rank): a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh, exact instants; all; default 7d) as of refreshed_at, or the UTC days [from_day, to_day) at call time; window_start/window_end say which. With plan: only events recorded under that plan. Values with nothing of the metric (by quantity: also those whose quantities count in different units, NULL), or with fewer users than the minimum group size, are left out. Requires tally_analyst.';

-- >>> functions/0863_admin_trend.sql
-- Daily series (sparklines) per value of a dimension, zero-filled, in UTC days, optionally of one plan: events per day of chosen kinds, voices, models.
-- Called by dashboards, admin.trend() and `pgtally admin`.
create or replace function tally.admin_trend(dimension text default 'kind', only_values text[] default null,
                                             from_day date default null, to_day date default null,
                                             plan text default null)
returns table (day date, value text, events bigint, failures bigint, quantity numeric, unit text, duration_ms numeric,
               cost numeric, users bigint, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  last_day  date := coalesce(to_day, (now() at time zone 'UTC')::date);
  first_day date := coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29);
  p         text := coalesce(tally._analytics_plan(plan), '*');
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  if last_day < first_day or last_day - first_day > 3660 then
    raise exception using errcode = 'PT011', column = 'from_day',
      message = format('from_day %s to to_day %s is not a range of 1 to 3661 days', first_day, last_day);
  end if;
  -- A day on which fewer users than the minimum group size used a value counts
  -- as a day without use of it (0), so a small group's days are not revealed
  -- either; a value with no such day in the range is not listed.
  return query
  with vals as (
    select v.value from unnest(only_values) as v(value)
    union
    select distinct d.value from tally.admin_daily_mv d
     where only_values is null and d.dimension = admin_trend.dimension and d.plan = p
       and d.day between first_day and last_day
       and (d.users >= min_users or min_users <= 1)
  )
  select g.day::date, vals.value, coalesce(d.events, 0), coalesce(d.failures, 0),
         -- NULL when the value's quantities that day count in different units (never added).
         case when d.value is null then 0 else d.quantity end, d.unit,
         coalesce(d.duration_ms, 0), coalesce(d.cost, 0), coalesce(d.users, 0),
         tally._refreshed_at('admin_daily_mv')
    from generate_series(first_day, last_day, interval '1 day') as g(day)
   cross join vals
    left join tally.admin_daily_mv d
           on d.dimension = admin_trend.dimension and d.plan = p and d.day = g.day::date and d.value = vals.value
          and (d.users >= min_users or min_users <= 1)
   order by vals.value, g.day;
end
$$;

comment on function tally.admin_trend(text, text[], date, date, text) is
  'Platform series per UTC day (from_day through to_day, both included; default the 30 days ending today) and value of a declared dimension, zero-filled: events, failures, quantity and its unit (NULL both when the day''s quantities of the value count in different units), duration, cost, active users. With plan: only events recorded under that plan. A day with fewer users of a value than the minimum group size shows 0, as a day without use. only_values picks values (default: all with a day shown in the range). As of refreshed_at (today''s row: the day up to the refresh). Requires tally_analyst.';

-- >>> functions/0864_admin_active_users.sql
-- DAU, WAU, MAU, new and paying users, attempts and success rate per UTC day, optionally of one plan (paying users live, from the subscriptions).
-- Called by dashboards, admin.active_users() and `pgtally admin`.
create or replace function tally.admin_active_users(from_day date default null, to_day date default null,
                                                    plan text default null)
returns table (day date, dau bigint, wau bigint, mau bigint, new_users bigint, paying_users bigint,
               paying_users_7d bigint, paying_users_30d bigint, succeeded bigint, failed bigint, success_rate numeric,
               billable_cost numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  return query
  with shown as (
    -- The whole platform counts everyone. One plan is a group: a day on which fewer
    -- users than the minimum group size used it reads as a day without use, and each
    -- count of users below the minimum reads 0.
    select a.day,
           case when d.shown then a.dau else 0 end as dau,
           case when p is null or a.wau >= min_users or min_users <= 1 then a.wau else 0 end as wau,
           case when p is null or a.mau >= min_users or min_users <= 1 then a.mau else 0 end as mau,
           case when d.shown and (p is null or a.new_users >= min_users or min_users <= 1) then a.new_users else 0 end
             as new_users,
           case when d.shown then a.succeeded else 0 end as succeeded,
           case when d.shown then a.failed else 0 end as failed,
           case when d.shown then a.billable_cost else 0 end as billable_cost
      from tally.admin_activity_mv a
     cross join lateral (select p is null or a.dau >= min_users or min_users <= 1 as shown) d
     where a.plan = coalesce(p, '*')
       and a.day between coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29)
                     and coalesce(to_day, (now() at time zone 'UTC')::date)
  ), paying as (
    -- Paying users per UTC day, 7 and 30 days: from the subscriptions at call
    -- time (exact, no refresh), over the days the view has in the range.
    select x.day, x.paying_users, x.paying_users_7d, x.paying_users_30d
      from (select min(s.day) as lo, max(s.day) as hi from shown s) r
     cross join lateral tally._paying_users_by_day(r.lo, r.hi, p) x
     where r.lo is not null
  )
  select a.day, a.dau, a.wau, a.mau, a.new_users,
         case when p is null or x.paying_users >= min_users or min_users <= 1 then coalesce(x.paying_users, 0) else 0 end,
         case when p is null or x.paying_users_7d >= min_users or min_users <= 1 then coalesce(x.paying_users_7d, 0) else 0 end,
         case when p is null or x.paying_users_30d >= min_users or min_users <= 1 then coalesce(x.paying_users_30d, 0) else 0 end,
         a.succeeded, a.failed, round(100.0 * a.succeeded / nullif(a.succeeded + a.failed, 0), 2), a.billable_cost,
         tally._refreshed_at('admin_activity_mv')
    from shown a
    left join paying x on x.day = a.day
   order by a.day;
end
$$;

comment on function tally.admin_active_users(date, date, text) is
  'Per UTC day (from_day through to_day, both included; default the 30 days ending today): DAU, WAU, MAU (distinct users with a succeeded or failed event in the 1, 7, 30 days ending that day), new users, attempts, success rate %, billable cost as of refreshed_at; paying users (live, per UTC day): users with a subscription at monthly_price > 0 in force at some moment of that day and of the 7 and 30 days ending it. With plan: only events recorded under that plan (new users: first active on it) and its subscriptions; a day with fewer users of the plan than the minimum group size reads as a day without use, and each count of users below the minimum reads 0. Requires tally_analyst.';

-- >>> functions/0865_admin_week_over_week.sql
-- Week-over-week cards: the 1, 2 or 4 complete weeks ending as_of against as many weeks before, optionally of one plan,
-- with absolute and % deltas and a trend flag. Called by dashboards, admin.week_over_week() and `pgtally admin`.
create or replace function tally.admin_week_over_week(as_of date default null, dimension text default 'kind',
                                                      weeks integer default 1, plan text default null)
returns table (metric text, value text, this_week numeric, last_week numeric, delta numeric, delta_pct numeric,
               trend text, week_start date, week_end date, previous_start date, previous_end date,
               refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  refreshed timestamptz := least(tally._refreshed_at('admin_activity_mv'), tally._refreshed_at('admin_daily_mv'));
  -- The last UTC day the views hold completely: the day before the refresh.
  last_complete date := (coalesce(refreshed, now()) at time zone 'UTC')::date - 1;
  d         date := coalesce(as_of, last_complete);
  n         integer;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  if weeks is null or weeks not in (1, 2, 4) then
    raise exception using errcode = 'PT011', column = 'weeks',
      message = format('weeks must be 1, 2 or 4 (got %s)', coalesce(weeks::text, 'null'));
  end if;
  -- Complete windows only: never a partial week against a whole one.
  if d > last_complete then
    raise exception using errcode = 'PT011', column = 'as_of',
      message = format('as_of (%s) must be a UTC day the analytics hold completely: %s or earlier (refreshed at %s)',
                       d, last_complete, coalesce(refreshed::text, 'never'));
  end if;
  n := 7 * weeks;
  return query
  with act as (
    -- This window: the n days (d - n, d]; the last one: (d - 2n, d - n].
    select coalesce(sum(a.succeeded) filter (where a.day > d - n), 0) as s1,
           coalesce(sum(a.succeeded) filter (where a.day <= d - n), 0) as s0,
           coalesce(sum(a.failed) filter (where a.day > d - n), 0) as f1,
           coalesce(sum(a.failed) filter (where a.day <= d - n), 0) as f0,
           coalesce(sum(a.new_users) filter (where a.day > d - n), 0) as n1,
           coalesce(sum(a.new_users) filter (where a.day <= d - n), 0) as n0,
           coalesce(sum(a.billable_cost) filter (where a.day > d - n), 0) as b1,
           coalesce(sum(a.billable_cost) filter (where a.day <= d - n), 0) as b0,
           -- Distinct users active in each window: the 7, 14 or 28 days ending its last day.
           coalesce(max(case n when 7 then a.wau when 14 then a.active_14d else a.active_28d end)
                      filter (where a.day = d), 0) as a1,
           coalesce(max(case n when 7 then a.wau when 14 then a.active_14d else a.active_28d end)
                      filter (where a.day = d - n), 0) as a0,
           -- Paying users of each window (UTC days): a paid subscription (to the plan) in force
           -- at some moment of it, read live from the subscriptions.
           tally._paying_users((d - n + 1)::timestamp at time zone 'UTC', (d + 1)::timestamp at time zone 'UTC', p) as p1,
           tally._paying_users((d - 2 * n + 1)::timestamp at time zone 'UTC', (d - n + 1)::timestamp at time zone 'UTC', p)
             as p0
      from tally.admin_activity_mv a
     where a.plan = coalesce(p, '*') and a.day between d - 2 * n + 1 and d
  ), platform as (
    select coalesce(sum(x.events) filter (where x.day > d - n), 0) as e1,
           coalesce(sum(x.events) filter (where x.day <= d - n), 0) as e0,
           coalesce(sum(x.cost) filter (where x.day > d - n), 0) as c1,
           coalesce(sum(x.cost) filter (where x.day <= d - n), 0) as c0
      from tally.admin_daily_mv x
     where x.dimension = 'kind' and x.plan = coalesce(p, '*') and x.day between d - 2 * n + 1 and d
  ), shown as (
    -- The whole platform counts everyone. One plan is a group: a window in which fewer
    -- users than the minimum group size used it reads as a window without use, and a
    -- count of users below the minimum reads 0.
    select a.*, pf.*,
           p is null or a.a1 >= min_users or min_users <= 1 as w1,
           p is null or a.a0 >= min_users or min_users <= 1 as w0
      from act a cross join platform pf
  ), per_value as (
    select x.value,
           coalesce(sum(x.events) filter (where x.day > d - n), 0) as e1,
           coalesce(sum(x.events) filter (where x.day <= d - n), 0) as e0,
           coalesce(sum(x.succeeded) filter (where x.day > d - n), 0) as s1,
           coalesce(sum(x.succeeded) filter (where x.day <= d - n), 0) as s0,
           coalesce(sum(x.failures) filter (where x.day > d - n), 0) as f1,
           coalesce(sum(x.failures) filter (where x.day <= d - n), 0) as f0,
           -- Quantities of different units are never added (a day that mixes them, or two days in two units).
           case when bool_or(x.quantity is null) filter (where x.day > d - n)
                     or count(distinct x.unit) filter (where x.day > d - n and x.quantity <> 0) > 1 then null
                else coalesce(sum(x.quantity) filter (where x.day > d - n), 0) end as q1,
           case when bool_or(x.quantity is null) filter (where x.day <= d - n)
                     or count(distinct x.unit) filter (where x.day <= d - n and x.quantity <> 0) > 1 then null
                else coalesce(sum(x.quantity) filter (where x.day <= d - n), 0) end as q0,
           coalesce(sum(x.duration_ms) filter (where x.day > d - n), 0) as m1,
           coalesce(sum(x.duration_ms) filter (where x.day <= d - n), 0) as m0,
           coalesce(sum(x.cost) filter (where x.day > d - n), 0) as c1,
           coalesce(sum(x.cost) filter (where x.day <= d - n), 0) as c0
      from tally.admin_daily_mv x
     where x.dimension = admin_week_over_week.dimension and x.plan = coalesce(p, '*')
       and x.day between d - 2 * n + 1 and d
       -- The days admin_trend shows: a day with fewer users of the value than the
       -- minimum group size counts as none.
       and (x.users >= min_users or min_users <= 1)
     group by x.value
  ), cards (ord, metric, value, tw, lw) as (
    select 1, 'events', '*', case when s.w1 then s.e1 else 0 end::numeric, case when s.w0 then s.e0 else 0 end::numeric
      from shown s
    union all select 2, 'active_users', '*', case when s.w1 then s.a1 else 0 end, case when s.w0 then s.a0 else 0 end
      from shown s
    union all select 3, 'new_users', '*',
                     case when s.w1 and (p is null or s.n1 >= min_users or min_users <= 1) then s.n1 else 0 end,
                     case when s.w0 and (p is null or s.n0 >= min_users or min_users <= 1) then s.n0 else 0 end
      from shown s
    union all select 4, 'paying_users', '*',
                     case when p is null or s.p1 >= min_users or min_users <= 1 then s.p1 else 0 end,
                     case when p is null or s.p0 >= min_users or min_users <= 1 then s.p0 else 0 end
      from shown s
    union all select 5, 'success_rate', '*',
                     case when s.w1 then round(100.0 * s.s1 / nullif(s.s1 + s.f1, 0), 2) end,
                     case when s.w0 then round(100.0 * s.s0 / nullif(s.s0 + s.f0, 0), 2) end
      from shown s
    union all select 6, 'succeeded', '*', case when s.w1 then s.s1 else 0 end, case when s.w0 then s.s0 else 0 end
      from shown s
    union all select 7, 'failures', '*', case when s.w1 then s.f1 else 0 end, case when s.w0 then s.f0 else 0 end
      from shown s
    union all select 8, 'cost', '*', case when s.w1 then s.c1 else 0 end, case when s.w0 then s.c0 else 0 end
      from shown s
    union all select 9, 'billable_cost', '*', case when s.w1 then s.b1 else 0 end, case when s.w0 then s.b0 else 0 end
      from shown s
    union all select 10, 'events', v.value, v.e1, v.e0 from per_value v
    union all select 11, 'failures', v.value, v.f1, v.f0 from per_value v
    union all select 12, 'quantity', v.value, v.q1, v.q0 from per_value v
    union all select 13, 'duration_ms', v.value, v.m1, v.m0 from per_value v
    union all select 14, 'cost', v.value, v.c1, v.c0 from per_value v
    -- Success rate per value (per kind by default): succeeded / (succeeded + failed) attempts.
    union all select 15, 'success_rate', v.value, round(100.0 * v.s1 / nullif(v.s1 + v.f1, 0), 2),
                     round(100.0 * v.s0 / nullif(v.s0 + v.f0, 0), 2) from per_value v
  )
  select c.metric, c.value, c.tw, c.lw, c.tw - c.lw,
         round(100 * (c.tw - c.lw) / nullif(abs(c.lw), 0), 1),
         case when c.tw is null or c.lw is null then null
              when c.lw = 0 then case when c.tw > 0 then 'up' when c.tw < 0 then 'down' else 'stable' end
              when abs(c.tw - c.lw) <= 0.05 * abs(c.lw) then 'stable'
              when c.tw > c.lw then 'up'
              else 'down' end,
         d - n + 1, d, d - 2 * n + 1, d - n,
         refreshed
    from cards c
   order by c.ord, c.value;
end
$$;

comment on function tally.admin_week_over_week(date, text, integer, text) is
  'Week-over-week cards for the weeks (1, 2 or 4) of complete UTC days ending as_of (default: the last day complete at the refresh; a later day raises PT011) against as many weeks before (previous_start..previous_end): platform events, active users (distinct users active in the window), new users, paying users (live: users with a subscription at monthly_price > 0 in force at some moment of the window, UTC days), success rate %, attempts, cost, billable cost (value ''*''), then events, failures, quantity (NULL when its days count in different units), duration_ms, cost and success rate (succeeded / (succeeded + failed) attempts) per value of a declared dimension (default kind), summed over the days on which at least the minimum group size of users used the value (as admin_trend shows them). With plan: only events recorded under that plan (and its subscriptions); a window in which fewer users than the minimum group size used the plan reads as a window without use. delta = this - last, delta_pct relative to last (NULL when last is 0), trend up/down/stable (stable within 5%). Requires tally_analyst.';

-- >>> functions/0866_admin_funnel.sql
-- Funnel over an ordered list of kinds: users reaching each step in order, conversion and drop-off per step, per timeframe
-- (and optionally one plan). Called by dashboards, admin.funnel() and `pgtally admin`; reads the merge-maintained tally.user_kind_days.
create or replace function tally.admin_funnel(steps text[], from_at timestamptz default null,
                                              to_at timestamptz default null, plan text default null)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  lo timestamptz := coalesce(from_at, '-infinity');
  hi timestamptz := coalesce(to_at, 'infinity');
  min_users integer := tally._analytics_min_group_size();
  p  text := tally._analytics_plan(plan);
  start_users text[];
begin
  -- SECURITY DEFINER on purpose: the answer is aggregate, but it is computed from
  -- per-user rows (step days, pending deltas, the log) that analysts may not read.
  -- EXECUTE is granted to tally_analyst only (db/0890_admin_grants.sql).
  if steps is null or cardinality(steps) not between 1 and 20 or array_position(steps, null) is not null
     or '' = any (steps) or (select count(distinct s) from unnest(steps) as s) <> cardinality(steps) then
    raise exception using errcode = 'PT011', column = 'steps',
      message = format('steps must be 1 to 20 distinct, non-empty kinds (got %s)', coalesce(steps::text, 'null'));
  elsif hi <= lo then
    raise exception using errcode = 'PT011', column = 'to_at',
      message = format('to_at (%s) must be after from_at (%s)', hi, lo);
  end if;
  -- Step-1 candidates: users with a merged step-1 use on a day of the timeframe
  -- (an index range on (kind, day)), or a pending one in it. Only these users
  -- are looked at, so the cost follows the users active at step 1 in the
  -- timeframe, not the history or every user who ever reached a step. Read
  -- first, by themselves: Citus refuses a recursive query that names a
  -- distributed table without a filter on user_id (the walk below reads the
  -- tables only through tally._funnel_next, one user at a time).
  start_users := array(
    select d.user_id
      from tally.user_kind_days d
     where d.kind = steps[1]
       and d.day between (lo at time zone 'UTC')::date and (hi at time zone 'UTC')::date
       and d.last_at >= lo and d.first_at < hi
       and (p is null or d.plan = p)
    union
    select x.user_id
      from tally.pending_deltas x
     where x.is_use and x.kind = steps[1] and x.occurred_at >= lo and x.occurred_at < hi
       and (p is null or coalesce(x.plan, '') = p));
  return query
  with recursive ordered as (
    select o.kind, o.n::integer as n from unnest(steps) with ordinality as o(kind, n)
  ), starts as (
    select s.user_id from unnest(start_users) as s(user_id)
  ), reached (n, user_id, at) as (
    -- A journey inside the timeframe, greedily: step 1 at the user's earliest
    -- step-1 use in [from_at, to_at); step k at the earliest step-k use at or
    -- after step k - 1's time and before to_at. Taking the earliest time at each
    -- step finds an in-order journey whenever one exists, so a user counts at
    -- step k exactly when steps 1..k happened in order inside the timeframe
    -- (uses before from_at, such as an older first visit, play no part).
    select 1, s.user_id, f.t
      from starts s
     cross join lateral (select tally._funnel_next(s.user_id, steps[1], lo, hi, p) as t) f
     where f.t is not null
    union all
    select r.n + 1, r.user_id, f.t
      from reached r
      join ordered o on o.n = r.n + 1
     cross join lateral (select tally._funnel_next(r.user_id, o.kind, r.at, hi, p) as t) f
     where f.t is not null
  ), counts as (
    select o.n, o.kind, count(r.user_id) as users
      from ordered o
      left join reached r on r.n = o.n
     group by o.n, o.kind
  ), shown as (
    -- A step fewer users than the minimum group size reached counts as reached
    -- by none (so do the steps after it): a narrow timeframe cannot follow one
    -- user through the steps.
    select c.n, c.kind, case when c.users >= min_users or min_users <= 1 then c.users else 0 end as users
      from counts c
  )
  select c.n, c.kind, c.users,
         round(100.0 * c.users / nullif(first_value(c.users) over w, 0), 2),
         round(100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         coalesce(lag(c.users) over w, c.users) - c.users,
         round(100 - 100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         statement_timestamp()
    from shown c
  window w as (order by c.n)
   order by c.n;
end
$$;

comment on function tally.admin_funnel(text[], timestamptz, timestamptz, text) is
  'Funnel over ordered kinds (e.g. {paywall.viewed,paywall.clicked,checkout.started,checkout.completed}) inside [from_at, to_at) (default: all time; exact instants): per step k, the users with succeeded original events of steps 1..k (with plan: recorded under that plan) inside the timeframe at non-decreasing times (uses before from_at do not count; a step done only before the previous one does not count); conversion from step 1 and from the previous step, drop-off. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). From the merge-maintained tally.user_kind_days plus pending deltas, so exact at commit (refreshed_at = now). Requires tally_analyst.';

-- >>> functions/0867_admin_reliability.sql
-- Reliability by kind and format in a timeframe (24h, 7d, 30d, all, or UTC days), optionally of one plan: success rate,
-- average and p50/p95/p99 durations. Called by dashboards, admin.reliability() and `pgtally admin`.
create or replace function tally.admin_reliability(time_window text default null, only_kind text default null,
                                                   from_day date default null, to_day date default null,
                                                   plan text default null)
returns table (kind text, format text, succeeded bigint, failed bigint, success_rate numeric, timed_events bigint,
               avg_duration_ms bigint, p50_duration_ms bigint, p95_duration_ms bigint, p99_duration_ms bigint,
               window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  select * into r from tally._analytics_range(time_window, from_day, to_day, '7d');
  return query
  with x as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.kind, m.format, m.succeeded, m.failed, m.success_rate, m.timed_events, m.avg_duration_ms,
           m.p50_duration_ms, m.p95_duration_ms, m.p99_duration_ms, m.users, m.window_start, m.window_end,
           tally._refreshed_at('admin_reliability_mv') as refreshed_at
      from tally.admin_reliability_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
    union all
    select l.kind, l.format, l.succeeded, l.failed, round(100.0 * l.succeeded / nullif(l.succeeded + l.failed, 0), 2),
           l.timed_events, round(l.duration_ms / nullif(l.timed_events, 0))::bigint,
           tally._duration_bucket_ms(l.p50_bucket), tally._duration_bucket_ms(l.p95_bucket),
           tally._duration_bucket_ms(l.p99_bucket), l.users, l.window_start, l.window_end, statement_timestamp()
      from tally._analytics_reliability(r.range_start, r.range_end, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  )
  select x.kind, x.format, x.succeeded, x.failed, x.success_rate, x.timed_events, x.avg_duration_ms,
         x.p50_duration_ms, x.p95_duration_ms, x.p99_duration_ms, nullif(x.window_start, '-infinity'), x.window_end,
         x.refreshed_at
    from x
   -- Kinds and formats with fewer users than the minimum group size are left out.
   where (x.users >= min_users or min_users <= 1)
     and (only_kind is null or x.kind = only_kind)
   order by x.kind, x.format <> '*', x.format;
end
$$;

comment on function tally.admin_reliability(text, text, date, date, text) is
  'Per kind and format (attributes.format; ''*'' = all formats, first; '''' = none) in a timeframe: a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all; default 7d) as of refreshed_at, or the UTC days [from_day, to_day) at call time; window_start/window_end say which. Succeeded and failed attempts, success rate % (succeeded / (succeeded + failed)), average, p50, p95 and p99 duration of succeeded events (histogram estimates within 4.4%). With plan: only events recorded under that plan. Kinds and formats with fewer users (with an attempt) than the minimum group size are left out. Requires tally_analyst.';

-- >>> functions/0868_admin_error_codes.sql
-- Top error codes of failed events in a timeframe (24h, 7d, 30d, all, or UTC days), by kind (and format), optionally of one plan,
-- from the retained raw log. Called by dashboards, admin.error_codes() and `pgtally admin`.
create or replace function tally.admin_error_codes(time_window text default null, max_rows integer default 10,
                                                   by_format boolean default false, from_day date default null,
                                                   to_day date default null, plan text default null)
returns table (kind text, format text, error_code text, failures bigint, users bigint, last_at timestamptz,
               window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  select * into r from tally._analytics_range(time_window, from_day, to_day, '7d');
  if max_rows is null or max_rows not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'max_rows',
      message = format('max_rows must be between 1 and 1000 (got %s)', coalesce(max_rows::text, 'null'));
  end if;
  return query
  with x as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.kind, m.format, m.error_code, m.failures, m.users, m.last_at, m.window_start, m.window_end,
           tally._refreshed_at('admin_error_codes_mv') as refreshed_at
      from tally.admin_error_codes_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
    union all
    select l.kind, l.format, l.error_code, l.failures, l.users, l.last_at, l.window_start, l.window_end,
           statement_timestamp()
      from tally._analytics_error_codes(r.range_start, r.range_end, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  )
  select x.kind, x.format, x.error_code, x.failures, x.users, x.last_at, nullif(x.window_start, '-infinity'),
         x.window_end, x.refreshed_at
    from x
   -- Error codes that fewer users than the minimum group size met are left out.
   where (x.users >= min_users or min_users <= 1)
     and (case when by_format then x.format <> '*' else x.format = '*' end)
   order by x.failures desc, x.kind, x.format, x.error_code
   limit max_rows;
end
$$;

comment on function tally.admin_error_codes(text, integer, boolean, date, date, text) is
  'Most frequent error codes of failed events per kind, or per kind and format when by_format, in a timeframe: a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all = the retained raw log; default 7d) as of refreshed_at, or the UTC days [from_day, to_day) at call time; window_start/window_end say which (window_start is never before the retained log). Failures, distinct users, last failure. With plan: only events recorded under that plan. Codes met by fewer users than the minimum group size are left out. The only admin answer read from the raw log (error_code is not in the rollups), so dropped partitions are not in it. Requires tally_analyst.';

-- >>> functions/0869_admin_cohorts.sql
-- Cohort retention table: users by first-active UTC month, share of each cohort active in each later month, optionally of one plan.
-- Called by dashboards, admin.cohorts() and `pgtally admin`.
create or replace function tally.admin_cohorts(from_month date default null, to_month date default null,
                                               plan text default null)
returns table (cohort_month date, active_month date, month_offset integer, users bigint, cohort_users bigint,
               retention_pct numeric, refreshed_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select c.cohort_month, c.active_month, c.month_offset, c.users, z.users,
         round(100.0 * c.users / nullif(z.users, 0), 1), tally._refreshed_at('admin_cohorts_mv')
    from tally.admin_cohorts_mv c
    join tally.admin_cohorts_mv z on z.plan = c.plan and z.cohort_month = c.cohort_month and z.month_offset = 0
   cross join (select tally._analytics_min_group_size() as min_users,
                      coalesce(tally._analytics_plan(admin_cohorts.plan), '*') as plan) m
   where c.plan = m.plan
     and c.cohort_month >= coalesce(date_trunc('month', from_month::timestamp),
                                    date_trunc('month', now() at time zone 'UTC') - interval '11 months')::date
     and c.cohort_month <= coalesce(date_trunc('month', to_month::timestamp),
                                    date_trunc('month', now() at time zone 'UTC'))::date
     -- Cells of fewer users than the minimum group size are left out (as a month
     -- nobody came back in); a cohort smaller than it has no row at all.
     and (c.users >= m.min_users or m.min_users <= 1)
   order by c.cohort_month, c.month_offset
$$;

comment on function tally.admin_cohorts(date, date, text) is
  'Cohort retention: for each first-active UTC month from from_month to to_month (default the last 12 months), how many of its users were active in each later month (month_offset 0 = the cohort month, across year boundaries) and the share in %. With plan: only events recorded under that plan (a cohort = users by their first active month on the plan). Cells of fewer users than the minimum group size are left out (so are cohorts smaller than it). As of refreshed_at. Requires tally_analyst.';

-- >>> functions/0870_trg_report_subscriptions_after_update_erase.sql
-- Row trigger on tally.report_subscriptions: an erasure (tally.forget_user) deletes the subscription, e-mail address included.
-- Fired by the pseudonymizing UPDATE of tally.forget_user only (the trigger's WHEN clause checks tally.erasing).
create or replace function tally._trg_report_subscriptions_after_update_erase()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- forget_user replaces user_id by a pseudonym in every table; an address kept
  -- under the pseudonym would still name the person, so the row goes instead.
  delete from tally.report_subscriptions s where s.user_id = new.user_id;
  return null;
end
$$;

comment on function tally._trg_report_subscriptions_after_update_erase() is
  'After tally.forget_user pseudonymizes a report subscription, deletes it: the e-mail address is personal data and no summary is sent to a forgotten user (internal).';

-- >>> functions/0876_subscribe_reports.sql
-- Subscribes the reader's own user (tally.user_id) to the monthly e-mail summary, or changes its address.
-- Called by application backends as tally_reader (the HTTP API's /subscribe); returns the token of the unsubscribe link.
create or replace function tally.subscribe_reports(email text)
returns table (user_id text, email_address text, unsubscribe_token text, subscribed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  uid     text := tally.current_user_id();
  address text := btrim(subscribe_reports.email);
  sub     tally.report_subscriptions;
begin
  if uid is null or uid = '' then
    raise exception using errcode = 'PT011', column = 'user_id',
      message = 'tally.user_id is not set: set it to the user who subscribes (set_config(''tally.user_id'', ..., true))';
  elsif length(uid) > 200 then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'tally.user_id is longer than 200 characters';
  elsif address is null or length(address) > 254
        -- One address: a local part, @, a domain with a dot; no spaces, controls, commas, quotes or angle brackets
        -- (so it cannot add a recipient or a header to the message).
        or address !~ '^[^@[:space:][:cntrl:],;<>"()\[\]\\]+@[^@[:space:][:cntrl:],;<>"()\[\]\\]+\.[^@[:space:][:cntrl:],;<>"()\[\]\\.]+$' then
    raise exception using errcode = 'PT011', column = 'email',
      message = format('email %L is not an e-mail address like name@example.com (at most 254 characters)',
                       left(subscribe_reports.email, 300));
  end if;

  -- A user subscribes once: a second call changes the address and keeps the token (links already sent stay valid).
  insert into tally.report_subscriptions as s (user_id, email, unsubscribe_token)
  values (uid, address, uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
  on conflict on constraint report_subscriptions_pkey do update set email = excluded.email
  returning s.* into sub;

  return query
  select sub.user_id, sub.email, rtrim(translate(encode(sub.unsubscribe_token, 'base64'), '+/', '-_'), '='),
         sub.created_at;
end
$$;

comment on function tally.subscribe_reports(text) is
  'Subscribes the user of the session (tally.user_id) to the monthly usage summary at email, or changes the address of an existing subscription (the unsubscribe token stays). Returns the user, the address, the unsubscribe token (43 characters of base64url: build the unsubscribe link with it) and when the user subscribed. PT011 names email when it is not one plain address, user_id when tally.user_id is not set.';

-- >>> functions/0877_unsubscribe_reports.sql
-- Ends the e-mail summary subscription whose unsubscribe link carries token; true when one ended.
-- Called by application backends (the unsubscribe link of every summary) as tally_reader, with or without tally.user_id.
create or replace function tally.unsubscribe_reports(token text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- The token is the credential: 32 random bytes as unpadded base64url. Anything else matches nothing,
  -- including the other spellings of the same bytes: the last of 43 characters carries 4 bits, so its
  -- 2 padding bits must be zero (otherwise 4 different links would decode to the one token).
  if token is null or token !~ '^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$' then
    return false;
  end if;
  delete from tally.report_subscriptions s
   where s.unsubscribe_token = decode(translate(token, '-_', '+/') || '=', 'base64');
  return found;
end
$$;

comment on function tally.unsubscribe_reports(text) is
  'Deletes the report subscription whose unsubscribe token is token (the link in every summary) and returns true; returns false, changing nothing, for an unknown or malformed token or one already used. Needs no tally.user_id: the token is the credential.';

-- >>> functions/0878_record_quota_alerts.sql
-- Records the threshold alerts (80% and 100% of the plan limit) the merge batch's billable usage crossed, once each.
-- Called by tally._apply_rollups right after it adds the batch to tally.user_periods (every merge, rebuild and re-bucketing).
create or replace function tally._record_quota_alerts()
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  recorded integer;
  k_user   text;
  k_start  date;
  k_kind   text;
  k_at     text;
begin
  -- The (user, billing period, kind) keys the batch touched, with the plan in force at the
  -- batch's latest usage of them; their merged period totals were just updated. An alert is
  -- a fact about the merged total reaching a threshold: the primary key makes a second
  -- recording of the same user, period, kind and threshold a no-op, whatever merges,
  -- rebuilds or concurrent sessions run.
  if tally._is_distributed() then
    -- Citus: tally.plan_at reads a distributed table, which a statement that already wrote the
    -- user's shards in this transaction may not nest; look the plans up one key at a time first.
    truncate pg_temp._tally_alert_keys;  -- created by tally._prepare_merge_batch
    insert into pg_temp._tally_alert_keys
    select m.user_id, tally._period_start(m.day, m.anchor_day), m.kind, max(m.anchor_day), max(m.occurred_at)::text
      from pg_temp._tally_merge m
     where m.billable
     group by m.user_id, tally._period_start(m.day, m.anchor_day), m.kind;
    for k_user, k_start, k_kind, k_at in select a.user_id, a.period_start, a.kind, a.plan from pg_temp._tally_alert_keys a loop
      update pg_temp._tally_alert_keys a set plan = tally.plan_at(k_user, k_at::timestamptz)
       where a.user_id = k_user and a.period_start = k_start and a.kind = k_kind;
    end loop;
    insert into tally.quota_alerts (user_id, period_start, kind, threshold, period_end, plan, monthly_limit, quantity)
    select t.user_id, t.period_start, t.kind, th.threshold, tally._period_end(t.period_start, t.anchor_day), t.plan,
           l.monthly_limit, p.quantity
      from pg_temp._tally_alert_keys t
      join tally.plan_limits l on l.plan = t.plan and l.kind = t.kind
      join tally.user_periods p on p.user_id = t.user_id and p.period_start = t.period_start and p.kind = t.kind
     cross join (values (80), (100)) as th (threshold)
     where p.quantity > 0 and p.quantity * 100 >= l.monthly_limit::numeric * th.threshold
     order by t.user_id, t.period_start, t.kind, th.threshold
    on conflict on constraint quota_alerts_pkey do nothing;
    get diagnostics recorded = row_count;
    return recorded;
  end if;
  insert into tally.quota_alerts (user_id, period_start, kind, threshold, period_end, plan, monthly_limit, quantity)
  select t.user_id, t.period_start, t.kind, th.threshold, tally._period_end(t.period_start, t.anchor_day), t.plan,
         l.monthly_limit, p.quantity
    from (
      select m.user_id, tally._period_start(m.day, m.anchor_day) as period_start, m.kind,
             max(m.anchor_day) as anchor_day, tally.plan_at(m.user_id, max(m.occurred_at)) as plan
        from pg_temp._tally_merge m
       where m.billable
       group by m.user_id, tally._period_start(m.day, m.anchor_day), m.kind
    ) as t
    join tally.plan_limits l on l.plan = t.plan and l.kind = t.kind
    join tally.user_periods p on p.user_id = t.user_id and p.period_start = t.period_start and p.kind = t.kind
   cross join (values (80), (100)) as th (threshold)
   where p.quantity > 0 and p.quantity * 100 >= l.monthly_limit::numeric * th.threshold
   order by t.user_id, t.period_start, t.kind, th.threshold
  on conflict on constraint quota_alerts_pkey do nothing;
  get diagnostics recorded = row_count;
  return recorded;
end
$$;

comment on function tally._record_quota_alerts() is
  'Merge applier: for every (user, billing period, kind) of the batch pg_temp._tally_merge, records in tally.quota_alerts each threshold (80 and 100 percent of the limit of the plan in force at the batch''s latest usage) the merged billable quantity has reached, at most once per user, period, kind and threshold; returns how many it recorded (internal).';

-- >>> functions/0879_add_webhook_endpoint.sql
-- Adds a webhook endpoint for the threshold alerts, with a new signing secret unless one is given.
-- Called by DBAs and `pgtally webhook add`.
create or replace function tally.add_webhook_endpoint(url text, secret text default null, description text default null)
returns table (endpoint_id bigint, endpoint_url text, signing_secret text)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  key text := coalesce(secret, 'whsec_' || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'));
begin
  if url is null or url !~ '^https?://[^[:space:]]+$' or length(url) > 2000 then
    raise exception using errcode = 'PT011', column = 'url',
      message = format('url %L must be an http:// or https:// URL without spaces (at most 2000 characters)', left(url, 300));
  elsif key !~ '^whsec_[A-Za-z0-9+/]{22,}={0,2}$' then
    raise exception using errcode = 'PT011', column = 'secret',
      message = 'secret must be whsec_ followed by the base64 of a key of at least 16 bytes';
  end if;
  return query
  insert into tally.webhook_endpoints as e (url, secret, description)
  values (add_webhook_endpoint.url, key, add_webhook_endpoint.description)
  returning e.endpoint_id, e.url, e.secret;
end
$$;

comment on function tally.add_webhook_endpoint(text, text, text) is
  'Adds a webhook endpoint that receives the threshold alerts recorded from now on, signed per the Standard Webhooks specification; returns its id, URL and signing secret (whsec_..., generated from 32 random bytes unless given). PT011 names url or secret.';

-- >>> functions/0880_remove_webhook_endpoint.sql
-- Removes a webhook endpoint with its delivery state and log; true when it existed.
-- Called by DBAs and `pgtally webhook remove`.
create or replace function tally.remove_webhook_endpoint(endpoint_id bigint)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from tally.webhook_endpoints e where e.endpoint_id = remove_webhook_endpoint.endpoint_id;
  return found;
end
$$;

comment on function tally.remove_webhook_endpoint(bigint) is
  'Deletes a webhook endpoint, its delivery state and its delivery log; returns false when there is no such endpoint. To pause deliveries instead, set enabled = false on tally.webhook_endpoints.';

-- >>> functions/0881_remove_plan.sql
-- Removes a plan and its limits, unless a subscription (past or running) refers to it; true when it existed.
-- Called by billing admins and `pgtally plan remove`.
create or replace function tally.remove_plan(plan text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  users bigint;
begin
  select count(distinct s.user_id) into users from tally.subscriptions s where s.plan = remove_plan.plan;
  if users > 0 then
    raise exception using errcode = 'PT011', column = 'plan',
      message = format('plan %L is in the subscription history of %s user(s): it cannot be removed', plan, users),
      hint = 'Subscriptions keep the plan they were sold on; make another plan the default instead.';
  end if;
  delete from tally.plans p where p.plan = remove_plan.plan;  -- its limits go with it (on delete cascade)
  return found;
end
$$;

comment on function tally.remove_plan(text) is
  'Deletes a plan with its limits and returns true; false when there is no such plan. PT011 (plan) when any subscription, past or running, refers to it: the history keeps the plans it names.';

-- >>> db/0889_report_grants.sql
-- ============================================================================
-- Privileges of the reports and alerts (after their functions): readers
-- subscribe their own user and unsubscribe by token; everything else (the
-- outbox, the webhook endpoints and their secrets, the delivery log, adding
-- and removing endpoints) is the owner's. Readers also read their own
-- subscription and alerts through row-level security (db/0990).
-- ============================================================================

grant execute on function tally.subscribe_reports(text), tally.unsubscribe_reports(text) to tally_reader;

-- >>> db/0890_admin_grants.sql
-- ============================================================================
-- Admin analytics privileges: tally_analyst calls the admin functions (a
-- tally_reader gets 42501) and reads nothing per group directly: the
-- materialized views hold every group, however small, so only the functions
-- (SECURITY DEFINER) read them and hide the groups smaller than the minimum
-- group size. The refresh is for the owner, analysts and schedules;
-- scheduling and the minimum group size are for the owner. Readers read the
-- anonymized peer distribution.
-- ============================================================================

grant usage on schema tally to tally_analyst;

-- The materialized views: the owner's (and the definer functions'). Analysts
-- read the refresh log, the declared dimensions and the minimum group size.
revoke all on tally.admin_totals_mv, tally.admin_overview_mv, tally.admin_daily_mv, tally.admin_activity_mv,
              tally.admin_leaderboards_mv, tally.admin_reliability_mv, tally.admin_error_codes_mv,
              tally.admin_cohorts_mv, tally.peer_distribution_mv, tally.refresh_log, tally.analytics_settings
  from public;
grant select on tally.refresh_log, tally.dimensions, tally.analytics_settings to tally_analyst;
-- Row-level security is enabled on every table (db/0990); analysts read the one settings row.

-- The peer distribution holds no user id, no smallest or largest usage and
-- nothing of small groups (db/0838): readers may select it; tally.peer_percentile
-- (SECURITY INVOKER) reads it with the reader's rights.
grant select on tally.peer_distribution_mv to tally_reader;

-- Per-user sources of the views: no analyst reads them (the admin functions read them as definer); like
-- every per-user table, a reader sees its own rows through row-level security (db/0990).
revoke all on tally.user_kind_days, tally.user_daily_ops, tally.user_daily_durations, tally.user_daily_values from public;

-- Functions: nothing for PUBLIC; the read API (SECURITY DEFINER, each applying the minimum group size) for analysts.
-- The helpers (tally._analytics_*) read per-user rows: the owner's alone (the views and the definer functions run them).
revoke execute on function
  tally._apply_admin(),
  tally._funnel_next(text, text, timestamptz, timestamptz, text),
  tally._paying_users(timestamptz, timestamptz, text),
  tally._paying_users_by_day(date, date, text),
  tally._analytics_min_group_size(),
  tally.set_min_group_size(integer),
  tally._duration_bucket(bigint),
  tally._duration_bucket_ms(smallint),
  tally._analytics_span(timestamptz, timestamptz),
  tally._analytics_deltas(timestamptz, timestamptz),
  tally._analytics_delta_values(timestamptz, timestamptz, text),
  tally._analytics_delta_ops(timestamptz, timestamptz),
  tally._analytics_values(timestamptz, timestamptz, text, text),
  tally._analytics_overview(timestamptz, timestamptz, text),
  tally._analytics_reliability(timestamptz, timestamptz, text),
  tally._analytics_error_codes(timestamptz, timestamptz, text),
  tally._analytics_windows(timestamptz),
  tally._analytics_range(text, date, date, text),
  tally._analytics_plan(text),
  tally._analytics_views(),
  tally._check_window(text),
  tally._refreshed_at(text),
  tally._interval_to_cron(interval),
  tally.refresh_analytics(),
  tally.analytics_freshness(),
  tally.schedule_refresh(interval),
  tally.admin_overview(text, date, date, text),
  tally.admin_totals(text, text, date, date, text),
  tally.admin_leaderboard(text, text, text, integer, date, date, text),
  tally.admin_trend(text, text[], date, date, text),
  tally.admin_active_users(date, date, text),
  tally.admin_week_over_week(date, text, integer, text),
  tally.admin_funnel(text[], timestamptz, timestamptz, text),
  tally.admin_reliability(text, text, date, date, text),
  tally.admin_error_codes(text, integer, boolean, date, date, text),
  tally.admin_cohorts(date, date, text)
  from public;

grant execute on function
  tally._dimension_keys(text),
  tally._analytics_views(),
  tally._check_window(text),
  tally._refreshed_at(text),
  tally.analytics_freshness(),
  tally.refresh_analytics(),
  tally.admin_overview(text, date, date, text),
  tally.admin_totals(text, text, date, date, text),
  tally.admin_leaderboard(text, text, text, integer, date, date, text),
  tally.admin_trend(text, text[], date, date, text),
  tally.admin_active_users(date, date, text),
  tally.admin_week_over_week(date, text, integer, text),
  tally.admin_funnel(text[], timestamptz, timestamptz, text),
  tally.admin_reliability(text, text, date, date, text),
  tally.admin_error_codes(text, integer, boolean, date, date, text),
  tally.admin_cohorts(date, date, text)
  to tally_analyst;

-- The refresh runs as the views' owner (SECURITY DEFINER); scheduling and the minimum group size are a DBA's job.
grant execute on function tally.refresh_analytics(), tally.schedule_refresh(interval), tally._interval_to_cron(interval),
                          tally.set_min_group_size(integer)
  to tally_owner;

-- >>> functions/0980_secure_objects.sql
-- Makes every object of the schema safe by default: nothing for PUBLIC, everything owned by tally_owner.
-- Called at the end of the install (db/0995_ownership.sql) and by the migration runner after every upgrade, so an object a later revision adds is covered even if the revision forgets.
create or replace function tally._secure_objects()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  obj record;
begin
  -- PUBLIC: no privilege on the schema, any table, view, sequence or function
  -- (PostgreSQL grants EXECUTE on new functions to PUBLIC unless told otherwise).
  revoke all on schema tally from public;
  revoke all on all tables in schema tally from public;
  revoke all on all sequences in schema tally from public;
  revoke execute on all functions in schema tally from public;
  revoke execute on all procedures in schema tally from public;

  if not (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user)
     and not pg_catalog.pg_has_role(current_user, 'tally_owner', 'member') then
    raise notice 'pgtally: % is neither superuser nor a member of tally_owner; objects stay owned by %',
      current_user, current_user;
    return;
  end if;
  -- Functions tally_owner creates itself (a DBA working as the owner) are not executable by PUBLIC either.
  alter default privileges for role tally_owner revoke execute on functions from public;
  execute 'alter schema tally owner to tally_owner';
  for obj in
    select c.oid::pg_catalog.regclass as rel, c.relkind
      from pg_catalog.pg_class c
     where c.relnamespace = 'tally'::pg_catalog.regnamespace and c.relkind in ('r', 'p', 'v', 'm')  -- owned sequences follow their table
       and c.relowner <> 'tally_owner'::pg_catalog.regrole
  loop
    if obj.relkind = 'v' then
      execute pg_catalog.format('alter view %s owner to tally_owner', obj.rel);
    elsif obj.relkind = 'm' then
      execute pg_catalog.format('alter materialized view %s owner to tally_owner', obj.rel);
    else
      execute pg_catalog.format('alter table %s owner to tally_owner', obj.rel);
    end if;
  end loop;
  for obj in
    select p.oid::pg_catalog.regprocedure as fn, p.prokind
      from pg_catalog.pg_proc p
     where p.pronamespace = 'tally'::pg_catalog.regnamespace
       and p.proowner <> 'tally_owner'::pg_catalog.regrole
  loop
    if obj.prokind = 'p' then
      execute pg_catalog.format('alter procedure %s owner to tally_owner', obj.fn);
    else
      execute pg_catalog.format('alter function %s owner to tally_owner', obj.fn);
    end if;
  end loop;
end
$$;

comment on function tally._secure_objects() is
  'Revokes every privilege of PUBLIC in the schema and gives every object to tally_owner (when the caller may); run after every install and upgrade, so objects added later are safe by default (internal, owner only).';

-- >>> db/0990_security.sql
-- ============================================================================
-- Privileges and row-level security (docs/security.md has the matrix).
-- Runs last, so it covers every table the schema defines: a table with a
-- user_id column is per-user (readers see their own rows); reference tables
-- named below are readable by readers and analysts; every other table
-- (internal: keys, reversals, logs) is for tally_owner only.
-- ============================================================================

revoke all on schema tally from public;
grant usage on schema tally to tally_writer, tally_reader, tally_analyst;

-- Functions: nothing is callable by PUBLIC; each role gets its list below.
revoke execute on all functions in schema tally from public;

do $$
declare
  t record;
begin
  for t in
    select c.oid::regclass as rel, c.relname,
           exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped) as per_user
      from pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
       and not c.relrowsecurity
  loop
    execute format('revoke all on %s from public', t.rel);
    -- The one exception: the log has no row-level security, because PostgreSQL
    -- refuses COPY FROM into a table whose policies apply to the user and writers
    -- COPY into it. No role but the owner may read it; readers read their own
    -- rows through the view tally.my_usage_events (granted below).
    if t.rel = 'tally.usage_events'::regclass then
      continue;
    end if;
    execute format('alter table %s enable row level security', t.rel);
    if t.per_user then
      execute format('create policy %I on %s for select to tally_reader using (user_id = tally.current_user_id())',
                     format('readers see their own %s', replace(t.relname, '_', ' ')), t.rel);
      if t.relname <> all (array['event_keys', 'reversals', 'user_locks']) then  -- internal per-user tables stay the owner's
        execute format('grant select on %s to tally_reader', t.rel);
      end if;
    elsif t.relname = 'refresh_log' then
      -- Analysts read how fresh the views they query are (analytics_freshness); it holds no user data.
      execute format('create policy %I on %s for select to tally_analyst using (true)',
                     'analysts read the refresh log', t.rel);
    elsif t.relname = any (array['dimensions', 'plans', 'plan_limits', 'kinds']) then
      execute format('create policy %I on %s for select to tally_reader, tally_analyst using (true)',
                     format('everyone reads %s', replace(t.relname, '_', ' ')), t.rel);
      execute format('grant select on %s to tally_reader, tally_analyst', t.rel);
    end if;
  end loop;
end
$$;

-- Readers read their own raw events through this view (owned by tally_owner, filtered by tally.user_id).
grant select on tally.my_usage_events to tally_reader;

-- Writers append: INSERT/COPY on the contract columns (not recorded_at), the record functions.
grant insert (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
              attributes, corrects_event_id)
  on tally.usage_events to tally_writer;
grant execute on function
  tally.record_usage(text, text, text, bigint, timestamptz, bigint, numeric, text, text, boolean, jsonb, text),
  tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]),
  tally.begin_staging(),
  tally.record_usage_staged(),
  tally.reverse_usage(text, text, text),
  tally.amend_usage(text, text, text, bigint, bigint, numeric)
  to tally_writer;

-- Readers see one user through the read API: every function that is STABLE (or
-- IMMUTABLE) and SECURITY INVOKER can neither write nor see past row-level
-- security, so readers may call all of them; SECURITY DEFINER helpers of the
-- reads are granted one by one.
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'tally'::regnamespace and p.prokind = 'f' and not p.prosecdef
       and p.provolatile in ('s', 'i')
       -- the platform analytics (db/0890) are the analysts' alone
       and p.proname not like 'admin\_%' and p.proname not like 'analytics\_%' and p.proname not like '\_analytics\_%'
  loop
    execute format('grant execute on function %s to tally_reader', f);
  end loop;
end
$$;
-- (No SECURITY DEFINER helper is granted to readers: the peer percentile reads
-- the anonymized tally.peer_distribution_mv, db/0890.)

-- Producers check a quota in their own transaction before metered work.
grant execute on function tally.check_quota(text, text, bigint, timestamptz) to tally_writer;

select tally._secure_objects();
