-- Revision 0001: the initial pgtally schema (frozen copy of db/ + functions/ at this revision).

-- >>> db/0010_schema.sql
-- The tally schema holds every pgtally object.
-- Installed by migrations (Alembic) or from this declarative tree; never by hand.
create schema if not exists tally;

comment on schema tally is
  'pgtally: immutable usage log, trigger-maintained aggregates and the read API. Public API: functions and views; tables are internal unless docs say otherwise.';


-- >>> functions/0020_is_valid_time_zone.sql
-- True when tz is a time zone name PostgreSQL understands ('UTC', 'America/Los_Angeles', '+05:30').
-- Called by the user_settings check constraint and by tally.set_user_settings.
create or replace function tally._is_valid_time_zone(tz text)
returns boolean
language plpgsql
stable
set search_path = ''
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


-- >>> functions/0025_dimension_value_combined.sql
-- Combined dimensions (several keys): the values joined by '/', NULL when any is missing.
-- Called by tally._dimension_value.
create or replace function tally._dimension_value_combined(keys text[], kind text, attributes jsonb)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when count(*) = count(v) then string_agg(v, '/' order by i) end
    from unnest(keys) with ordinality as k(key, i),
         lateral (select nullif(case when k.key = 'kind' then kind else attributes ->> k.key end, '') as v) as x
$$;

comment on function tally._dimension_value_combined(text[], text, jsonb) is
  'Value of a dimension of several keys: the attribute values joined by ''/''; NULL when any is missing or empty.';


-- >>> functions/0030_dimension_value.sql
-- The value of one declared dimension for an event: attribute values for keys joined by '/'.
-- Called by the merge, the rebuild and every read that adds pending deltas.
--
-- Not pinned to a search_path on purpose: a pinned SQL function is never inlined,
-- and this one runs once per event and dimension. It names only its arguments
-- and pg_catalog operators (spelled OPERATOR(pg_catalog.x)), so no caller's
-- search_path can change what it does.
create or replace function tally._dimension_value(keys text[], kind text, attributes jsonb)
returns text
language sql
immutable
parallel safe
as $$
  select case
    when pg_catalog.cardinality(keys) OPERATOR(pg_catalog.=) 1 then
      nullif(
        case when keys[1] OPERATOR(pg_catalog.=) 'kind' then kind else attributes OPERATOR(pg_catalog.->>) keys[1] end,
        '')
    else tally._dimension_value_combined(keys, kind, attributes)
  end
$$;

comment on function tally._dimension_value(text[], text, jsonb) is
  'Value of a dimension declared with these keys for an event of this kind and attributes; NULL when any key is missing or empty.';


-- >>> functions/0040_period_start.sql
-- First local day of the billing period that contains local day d, for periods anchored on anchor_day.
-- Called by the merge and by the billing-period reads.
create or replace function tally._period_start(d date, anchor_day integer)
returns date
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when extract(day from d) >= anchor_day
      then (date_trunc('month', d)::date + (anchor_day - 1))
    else ((date_trunc('month', d) - interval '1 month')::date + (anchor_day - 1))
  end
$$;

comment on function tally._period_start(date, integer) is
  'Start of the billing period containing local day d when periods begin on day anchor_day (1-28) of each month.';


-- >>> db/0050_roles.sql
-- ============================================================================
-- Roles (cluster-wide, NOLOGIN groups): grant them to your login roles.
-- Created only when missing, so installing into a second database, or again
-- after a downgrade, never fails. Downgrades leave them (other databases of
-- the cluster may use them).
-- ============================================================================

do $$
declare
  r text;
begin
  foreach r in array array['tally_owner', 'tally_writer', 'tally_reader', 'tally_analyst'] loop
    if not exists (select from pg_roles where rolname = r) then
      execute format('create role %I nologin', r);
    end if;
  end loop;
end
$$;

comment on role tally_writer is 'pgtally: producers; may append usage (INSERT/COPY, record functions) and nothing else.';
comment on role tally_reader is 'pgtally: application backends; read one user''s data, the user named by the tally.user_id setting.';
comment on role tally_analyst is 'pgtally: admins and analysts; platform analytics (views, admin functions), no per-user raw events.';
comment on role tally_owner is 'pgtally: owns the schema; runs migrations, merges, retention.';


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
    when corrects_event_id is null and quantity < 0
      then array['PT002', 'quantity', format('quantity must not be negative outside a correction (got %s)', quantity)]
    when corrects_event_id is null and duration_ms < 0
      then array['PT002', 'duration_ms', format('duration_ms must not be negative outside a correction (got %s)', duration_ms)]
    when corrects_event_id is null and cost < 0
      then array['PT002', 'cost', format('cost must not be negative outside a correction (got %s)', cost)]
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


-- >>> db/0100_settings.sql
-- ============================================================================
-- Per-user settings and declared dimensions: the data that steers aggregation.
-- ============================================================================

create table tally.user_settings (
  user_id            text        primary key,
  time_zone          text        not null default 'UTC'
                                 constraint time_zone_must_be_known check (tally._is_valid_time_zone(time_zone)),
  billing_anchor_day smallint    not null default 1
                                 constraint billing_anchor_day_between_1_and_28 check (billing_anchor_day between 1 and 28),
  updated_at         timestamptz not null default now()
);

comment on table tally.user_settings is
  'Per-user settings: the IANA time zone that local days are counted in (default UTC) and the day of month a billing period starts. Users without a row use the defaults.';
comment on column tally.user_settings.time_zone is
  'Local days of this user''s daily rollups are computed in this zone when their events are merged; changing it affects later merges, tally.rebuild re-buckets history.';
comment on column tally.user_settings.billing_anchor_day is
  'Billing periods start on this local day of each month (1-28).';

create table tally.dimensions (
  name        text        primary key
                          constraint dimension_name_is_identifier check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  keys        text[]      not null
                          constraint dimension_has_1_to_4_keys check (cardinality(keys) between 1 and 4 and array_position(keys, null) is null),
  description text,
  declared_at timestamptz not null default now()
);

comment on table tally.dimensions is
  'Declared dimensions. An event''s value for a dimension is its attribute values for keys joined by ''/'' (the key ''kind'' means the kind column); an event missing any key has no value for that dimension.';


-- >>> functions/0100_trg_usage_events_before_insert_record.sql
-- Row trigger on tally.usage_events: validates, deduplicates by event_id and appends the pending delta.
-- Fires for every INSERT/COPY row that does not come through tally.record_usage_batch (which does this set-wise).
create or replace function tally._trg_usage_events_before_insert_record()
returns trigger
language plpgsql
security definer
set search_path = ''
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
       and new.quantity is not null and new.cost > -1e15 and new.cost < 1e15
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
    select k.user_id, k.correctable into original from tally.event_keys k where k.event_id = new.corrects_event_id;
    if not found or new.corrects_event_id = new.event_id then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L names no recorded event', new.corrects_event_id);
    elsif original.user_id <> new.user_id then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L belongs to another user', new.corrects_event_id);
    elsif not original.correctable then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L is not a succeeded original event; only those can be corrected', new.corrects_event_id);
    end if;
  end if;

  new.recorded_at := statement_timestamp();

  -- Exactly-once: the first committed insert of a key wins; a concurrent retry waits
  -- for it and then skips silently, so the producer's transaction goes on.
  insert into tally.event_keys (event_id, user_id, occurred_at, correctable)
  values (new.event_id, new.user_id, new.occurred_at, new.status = 'succeeded' and not is_correction)
  on conflict do nothing;
  if not found then
    return null;
  end if;

  if new.status = 'reversed' then
    -- A concurrent reversal of the same original waits here, then fails.
    insert into tally.reversals (original_event_id, event_id) values (new.corrects_event_id, new.event_id)
    on conflict do nothing;
    if not found then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('event %L is already reversed', new.corrects_event_id);
    end if;
  end if;

  succeeded := new.status = 'succeeded';
  insert into tally.pending_deltas
    (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms,
     timed_events, cost, billable, is_use)
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
     succeeded and not is_correction);
  return new;
end
$$;

comment on function tally._trg_usage_events_before_insert_record() is
  'Validates a new usage event (SQLSTATE class PT, message naming the field), checks a correction''s original, skips a duplicate event_id silently and appends the event''s signed contribution to tally.pending_deltas.';


-- >>> db/0110_usage_events.sql
-- ============================================================================
-- The usage log: immutable, partitioned by month of occurred_at, independent of
-- the host application's tables (no foreign keys in or out).
-- ============================================================================

create table tally.usage_events (
  event_id          text        not null,
  user_id           text        not null,
  kind              text        not null,
  occurred_at       timestamptz not null default now(),
  recorded_at       timestamptz not null,
  quantity          bigint      not null default 0,
  duration_ms       bigint,
  cost              numeric     not null default 0,
  status            text        not null default 'succeeded',
  error_code        text,
  billable          boolean     not null default true,
  attributes        jsonb       not null default '{}',
  corrects_event_id text
) partition by range (occurred_at);

comment on table tally.usage_events is
  'The immutable usage log (the data contract). Append with INSERT, COPY, tally.record_usage or tally.record_usage_batch; duplicates of an event_id are skipped silently; UPDATE, DELETE and TRUNCATE are refused.';
comment on column tally.usage_events.event_id is 'Producer''s idempotency key: the same key recorded twice counts once, forever (see tally.event_keys).';
comment on column tally.usage_events.user_id is 'The host application''s opaque user or account id.';
comment on column tally.usage_events.kind is 'Usage type (tts, ocr, transcription, export, llm, session, ...) or a product event such as paywall.viewed.';
comment on column tally.usage_events.occurred_at is 'When the usage happened, by the producer''s clock; the partition key.';
comment on column tally.usage_events.recorded_at is 'When pgtally stored the row; set by the database (writers have no privilege on this column).';
comment on column tally.usage_events.quantity is 'Metered amount in the kind''s unit (characters, tokens, seconds, pages); negative only on corrections.';
comment on column tally.usage_events.duration_ms is 'Audio or processing duration in milliseconds; NULL means unknown, not zero.';
comment on column tally.usage_events.cost is 'Money, exact numeric; negative only on corrections.';
comment on column tally.usage_events.status is 'succeeded, failed or cancelled; reversed on a correction that cancels its original.';
comment on column tally.usage_events.error_code is 'Error code of a failed event.';
comment on column tally.usage_events.billable is 'Whether the event counts towards billing-period counters (only succeeded events do).';
comment on column tally.usage_events.attributes is 'JSON object of dimension values and context (voice, model, provider, session_id, ...); at most 16 kB.';
comment on column tally.usage_events.corrects_event_id is 'Set on a correction: the event_id this row amends (signed amounts) or reverses (status reversed).';

-- Rows for a month without its own partition land here and are moved out by
-- tally.ensure_partitions, so an insert never fails for lack of a partition.
create table tally.usage_events_default partition of tally.usage_events default;
comment on table tally.usage_events_default is
  'Catch-all partition of tally.usage_events; tally.ensure_partitions moves its rows into monthly partitions.';

create index usage_events_user_time on tally.usage_events (user_id, occurred_at);


-- >>> functions/0110_trg_usage_events_refuse_change.sql
-- Row and statement trigger on tally.usage_events: refuses UPDATE, DELETE and TRUNCATE.
-- The log is immutable; corrections are new rows (corrects_event_id), retention drops whole partitions,
-- erasure (tally.forget_user) is the one UPDATE allowed.
create or replace function tally._trg_usage_events_refuse_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- tally.forget_user (SECURITY DEFINER, the owner) pseudonymizes user_id in place;
  -- only roles that may UPDATE the log at all (the owner) can reach this branch.
  if tg_op = 'UPDATE' and current_setting('tally.erasing', true) = 'on' then
    return new;
  end if;
  raise exception using
    errcode = 'PT009',
    message = format('tally.usage_events is immutable: %s is refused', tg_op),
    hint = 'Record a correction (corrects_event_id, or tally.reverse_usage) instead; old partitions are dropped by tally.apply_retention.';
end
$$;

comment on function tally._trg_usage_events_refuse_change() is
  'Refuses UPDATE, DELETE and TRUNCATE on the usage log (SQLSTATE PT009).';


-- >>> db/0120_event_keys.sql
-- ============================================================================
-- Exactly-once: one row per event_id ever recorded, across all partitions.
-- ============================================================================

-- Collation C: byte-wise comparisons are cheaper than locale-aware ones, and an
-- idempotency key needs equality only.
create table tally.event_keys (
  event_id    text        collate "C" primary key,
  user_id     text        not null,
  occurred_at timestamptz not null,
  correctable boolean     not null
);

comment on table tally.event_keys is
  'Every event_id recorded, kept after its raw partition is dropped so the deduplication window is forever (internal). Also locates an original event for corrections.';
comment on column tally.event_keys.correctable is
  'The event is a succeeded original (not itself a correction), so it may be amended or reversed.';

-- One reversal per original, enforced by a key so two concurrent reversals
-- with different event_ids cannot both count.
create table tally.reversals (
  original_event_id text collate "C" primary key,
  event_id          text collate "C" not null
);

comment on table tally.reversals is
  'The reversal recorded for each reversed event (internal): an original is reversed at most once, whatever the path and concurrency.';


-- >>> db/0130_pending_deltas.sql
-- ============================================================================
-- Pending deltas: what the insert trigger appends and tally.merge_pending folds
-- into the rollups. Readers add the pending part to the rollups, so every read
-- is exact at commit whatever the merge cadence.
-- ============================================================================

create table tally.pending_deltas (
  user_id      text        not null,
  kind         text        not null,
  occurred_at  timestamptz not null,
  attributes   jsonb       not null,
  events       integer     not null,
  failures     integer     not null,
  quantity     bigint      not null,
  duration_ms  bigint      not null,
  timed_events integer     not null,
  cost         numeric     not null,
  billable     boolean     not null,
  is_use       boolean     not null
) with (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 5000);

comment on table tally.pending_deltas is
  'Signed contributions of recorded events not yet merged into the rollups (internal). Append-only for writers, so concurrent writers never wait on each other''s rows; drained by tally.merge_pending.';
comment on column tally.pending_deltas.events is '+1 for a succeeded event, -1 for a reversal, 0 for an amendment or a failure.';
comment on column tally.pending_deltas.billable is 'Counts towards the billing period: billable and not failed.';
comment on column tally.pending_deltas.is_use is 'A succeeded original event: moves first_at/last_at.';

-- Without deduplication: a hot user's deltas all carry the same key, and
-- rewriting posting lists under the leaf page lock would serialize its writers.
create index pending_deltas_user on tally.pending_deltas (user_id) with (deduplicate_items = off);


-- >>> db/0140_rollups.sql
-- ============================================================================
-- Rollups: lifetime per user and dimension value, daily per user, dimension
-- value and local day, billing period per user and kind. Every key is led by
-- user_id so the schema distributes by user (Citus) and no row is shared by
-- two users. Written only by tally.merge_pending and tally.rebuild.
-- ============================================================================

create table tally.user_totals (
  user_id      text        not null,
  dimension    text        not null,
  value        text        not null,
  events       bigint      not null default 0,
  failures     bigint      not null default 0,
  quantity     bigint      not null default 0,
  duration_ms  bigint      not null default 0,
  timed_events bigint      not null default 0,
  cost         numeric     not null default 0,
  first_at     timestamptz,
  last_at      timestamptz,
  primary key (user_id, dimension, value)
) with (fillfactor = 80);

comment on table tally.user_totals is
  'Merged lifetime totals per user, dimension and value (internal; read through tally.lifetime_totals, which adds pending deltas).';

create table tally.user_daily (
  user_id      text        not null,
  dimension    text        not null,
  day          date        not null,
  value        text        not null,
  events       bigint      not null default 0,
  failures     bigint      not null default 0,
  quantity     bigint      not null default 0,
  duration_ms  bigint      not null default 0,
  timed_events bigint      not null default 0,
  cost         numeric     not null default 0,
  first_at     timestamptz,
  last_at      timestamptz,
  primary key (user_id, dimension, day, value)
) with (fillfactor = 80);

comment on table tally.user_daily is
  'Merged daily rollups per user, dimension, local day (in the user''s time zone) and value (internal; read through tally.daily_totals). Kept forever: raw retention never drops them.';

create table tally.user_periods (
  user_id      text        not null,
  period_start date        not null,
  kind         text        not null,
  events       bigint      not null default 0,
  quantity     bigint      not null default 0,
  duration_ms  bigint      not null default 0,
  cost         numeric     not null default 0,
  primary key (user_id, period_start, kind)
) with (fillfactor = 80);

comment on table tally.user_periods is
  'Merged billing-period counters per user and kind: billable, succeeded usage only. A new period is a new key, so nothing is ever reset (internal; read through tally.period_totals).';


-- >>> db/0150_lifecycle_logs.sql
-- ============================================================================
-- Logs of lifecycle operations: retention runs and erasures.
-- ============================================================================

create table tally.retention_runs (
  partition_name text        not null,
  range_start    date        not null,
  range_end      date        not null,
  rows_dropped   bigint      not null,
  dropped_at     timestamptz not null default now(),
  primary key (partition_name, dropped_at)
);

comment on table tally.retention_runs is
  'Raw log partitions dropped by tally.apply_retention. The latest range_end is where the retained log starts: verify and rebuild only recompute days after it.';

create table tally.erasures (
  pseudonym     text        primary key,
  forgotten_at  timestamptz not null default now(),
  rows_changed  bigint      not null
);

comment on table tally.erasures is
  'Users forgotten by tally.forget_user: the pseudonym that replaced their id everywhere, when, and how many rows changed. The original id is not kept.';


-- >>> functions/0200_record_usage.sql
-- Records one usage event with validation; true when it was new, false for a duplicate event_id.
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
set search_path = ''
as $$
declare
  added integer;
begin
  -- The row trigger validates and deduplicates; a skipped duplicate inserts no row.
  -- (No RETURNING: under row-level security it would need a SELECT policy writers lack.)
  insert into tally.usage_events
    (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
     attributes, corrects_event_id)
  values
    (record_usage.event_id, record_usage.user_id, record_usage.kind, record_usage.occurred_at,
     record_usage.quantity, record_usage.duration_ms, record_usage.cost, record_usage.status,
     record_usage.error_code, record_usage.billable, record_usage.attributes, record_usage.corrects_event_id);
  get diagnostics added = row_count;
  return added = 1;
end
$$;

comment on function tally.record_usage(text, text, text, bigint, timestamptz, bigint, numeric, text, text, boolean, jsonb, text) is
  'Records one usage event (validated, exactly-once by event_id). Returns true when new, false when the event_id was already recorded.';


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
      -- index probes for corrections only: never a scan of the (large) key table
      left join lateral (select k.event_id, k.user_id, k.correctable from tally.event_keys k
                          where b.corrects_event_id is not null and k.event_id = b.corrects_event_id) k on true
      -- an original may also come in the same batch, before or after its correction
      left join (select distinct on (i.event_id) i.event_id, i.user_id, i.status, i.corrects_event_id
                   from input i order by i.event_id, i.ord) o
        on o.event_id = b.corrects_event_id and k.event_id is null
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
                 when b.original_user is null or b.corrects_event_id = b.event_id
                   then array['PT008', 'corrects_event_id', format('corrects_event_id %L names no recorded event', b.corrects_event_id)]
                 when b.original_user <> b.user_id
                   then array['PT008', 'corrects_event_id', format('corrects_event_id %L belongs to another user', b.corrects_event_id)]
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


-- >>> functions/0212_begin_staging.sql
-- Creates this session's staging table pg_temp.tally_staging (if missing) for COPY-based batches.
-- Called by the Python client's record_many (and by any producer) before COPY ... then tally.record_usage_staged().
create or replace function tally.begin_staging()
returns void
language plpgsql
set search_path = ''
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
set search_path = ''
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


-- >>> functions/0220_reverse_usage.sql
-- Reverses a recorded event: a new row with the original's user, kind, attributes and time and negated
-- amounts, so every aggregate bucket of the original drops it at once. Called by producers and the client.
create or replace function tally.reverse_usage(original_event_id text, event_id text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  key  record;
  orig record;
  new_row boolean;
begin
  select k.user_id, k.occurred_at into key from tally.event_keys k where k.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names no recorded event', original_event_id);
  end if;
  select e.* into orig from tally.usage_events e
   where e.user_id = key.user_id and e.occurred_at = key.occurred_at and e.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is no longer in the retained log; record the correction with explicit amounts', original_event_id);
  end if;
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

comment on function tally.reverse_usage(text, text) is
  'Records a reversal (status reversed, negated amounts, same user, kind, attributes and occurred_at) of a succeeded event; true when new, false when event_id was already recorded.';


-- >>> functions/0225_amend_usage.sql
-- Amends a recorded event by signed deltas, booked in the original's buckets (same user, kind, attributes, time).
-- Called by producers that re-measure usage (e.g. a provider's final character count).
create or replace function tally.amend_usage(
  original_event_id text,
  event_id          text,
  quantity_delta    bigint  default 0,
  duration_ms_delta bigint  default null,
  cost_delta        numeric default 0
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  key  record;
  orig record;
begin
  select k.user_id, k.occurred_at into key from tally.event_keys k where k.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('corrects_event_id %L names no recorded event', original_event_id);
  end if;
  select e.* into orig from tally.usage_events e
   where e.user_id = key.user_id and e.occurred_at = key.occurred_at and e.event_id = original_event_id;
  if not found then
    raise exception using errcode = 'PT008', column = 'corrects_event_id',
      message = format('event %L is no longer in the retained log; record the correction with explicit amounts', original_event_id);
  end if;
  return tally.record_usage(
    event_id => amend_usage.event_id, user_id => orig.user_id, kind => orig.kind,
    quantity => quantity_delta, occurred_at => orig.occurred_at, duration_ms => duration_ms_delta,
    cost => cost_delta, status => 'succeeded', billable => orig.billable, attributes => orig.attributes,
    corrects_event_id => original_event_id);
end
$$;

comment on function tally.amend_usage(text, text, bigint, bigint, numeric) is
  'Records an amendment of an event by signed deltas (quantity, duration_ms, cost) booked in the original''s buckets; the event count is unchanged.';


-- >>> functions/0299_prepare_merge_batch.sql
-- Creates (or empties) pg_temp._tally_merge, the batch of deltas the appliers add to the aggregates.
-- Called by tally._merge_pending_locked and tally.rebuild.
create or replace function tally._prepare_merge_batch()
returns void
language plpgsql
security definer
set search_path = ''
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
      anchor_day   integer
    ) on commit drop;
  else
    truncate pg_temp._tally_merge;
  end if;
end
$$;

comment on function tally._prepare_merge_batch() is
  'Creates or empties the transaction''s merge batch pg_temp._tally_merge: deltas with the user''s local time, local day and billing anchor (internal).';


-- >>> functions/0300_merge_pending.sql
-- Folds pending deltas into the rollups (lifetime, daily, billing period, and the appliers below) in one transaction.
-- Called on a schedule (pg_cron or `pgtally merge`), by retention and rebuild; reads never need it for exactness.
create or replace function tally._merge_pending_locked(max_rows integer)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  merged integer;
begin
  -- The batch of deltas being merged, with each user's local day and billing anchor.
  -- Readers see the deleted deltas and the updated rollups switch over at commit,
  -- so no read ever counts a delta twice or misses it. Only one merge runs at a
  -- time (advisory lock held by the caller) and every applier upserts keys in
  -- sorted order.
  perform tally._prepare_merge_batch();

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
         coalesce(s.billing_anchor_day, 1)
    from moved m
    left join tally.user_settings s on s.user_id = m.user_id;
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
  'Moves up to max_rows pending deltas into pg_temp._tally_merge and runs every applier on them; the caller holds the merge advisory lock (internal).';

create or replace function tally.merge_pending(max_rows integer default 100000)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
  if max_rows is null or max_rows < 1 then
    raise exception using errcode = 'PT011', column = 'max_rows', message = 'max_rows must be a positive integer';
  end if;
  -- One merge at a time; a second caller returns 0 at once instead of queueing.
  if not pg_try_advisory_xact_lock(7461, 1) then
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
set search_path = ''
as $$
begin
  with expanded as (
    select m.*, d.name as dimension, tally._dimension_value(d.keys, m.kind, m.attributes) as value
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
end
$$;

comment on function tally._apply_rollups(text) is
  'Merge applier: adds the deltas in pg_temp._tally_merge to the lifetime, daily and billing-period rollups, or only to one dimension''s lifetime and daily rollups (internal).';


-- >>> functions/0310_apply_engagement.sql
-- Applier: adds the merge batch (pg_temp._tally_merge) to the engagement profile (sessions, hour-of-week activity; issue: user-facing analytics).
-- Called by tally._merge_pending_locked only; a no-op until that feature lands.
create or replace function tally._apply_engagement()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  return;
end
$$;

comment on function tally._apply_engagement() is
  'Merge applier for the engagement profile (internal).';


-- >>> functions/0320_apply_admin.sql
-- Applier: adds the merge batch (pg_temp._tally_merge) to the admin analytics (funnel first-reached steps, duration histograms; issue: admin analytics).
-- Called by tally._merge_pending_locked only; a no-op until that feature lands.
create or replace function tally._apply_admin()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  return;
end
$$;

comment on function tally._apply_admin() is
  'Merge applier for the admin analytics (internal).';


-- >>> functions/0390_protect_partition.sql
-- Puts the statement-level immutability triggers on one partition of the usage log.
-- Called by tally.ensure_partitions and at install: PostgreSQL clones row triggers to partitions, not statement triggers.
create or replace function tally._protect_partition(part regclass)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  execute format('create trigger usage_events_before_change_refuse_statement before update or delete on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
  execute format('create trigger usage_events_before_truncate_refuse before truncate on %s '
                 'for each statement execute function tally._trg_usage_events_refuse_change()', part);
end
$$;

comment on function tally._protect_partition(regclass) is
  'Creates the UPDATE/DELETE/TRUNCATE-refusing statement triggers on a log partition (internal).';


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
set search_path = ''
as $$
declare
  month_start date;
  month_end   date;
  lo          timestamptz;
  hi          timestamptz;
  part        text;
  created     integer := 0;
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
      perform pg_advisory_xact_lock(7461, 2);
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
          -- Rows of this month sit in the default partition: detach it (writers wait on the
          -- parent's lock, none fails), create the month, move the rows, re-attach.
          -- A detached table has no triggers, so the move is not a change of the log.
          alter table tally.usage_events detach partition tally.usage_events_default;
          execute format('create table tally.%I partition of tally.usage_events for values from (%L) to (%L)',
                         part, lo, hi);
          insert into tally.usage_events
          select * from tally.usage_events_default where occurred_at >= lo and occurred_at < hi;
          -- Detached and locked: the refusal trigger (its own, not the parent's) can step aside.
          alter table tally.usage_events_default disable trigger usage_events_before_change_refuse_statement;
          delete from tally.usage_events_default where occurred_at >= lo and occurred_at < hi;
          alter table tally.usage_events_default enable trigger usage_events_before_change_refuse_statement;
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
set search_path = ''
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
  perform pg_advisory_xact_lock(7461, 1);
  for part in
    select c.relname, c.oid,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)')) as bounds
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
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
set search_path = ''
as $$
declare
  pseudonym text := 'forgotten-' || gen_random_uuid()::text;
  t         record;
  n         bigint;
  total     bigint := 0;
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT001', column = 'user_id', message = 'user_id is required';
  end if;
  -- No merge may move this user's deltas while ids change.
  perform pg_advisory_xact_lock(7461, 1);
  perform set_config('tally.erasing', 'on', true);
  -- Every table with a user_id column, including those later features add; the
  -- table names come from the catalog, the ids travel as parameters.
  for t in
    select c.oid::regclass as rel
      from pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
       and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped)
     order by c.relname
  loop
    execute format('update %s set user_id = $1 where user_id = $2', t.rel) using pseudonym, forget_user.user_id;
    get diagnostics n = row_count;
    total := total + n;
  end loop;
  perform set_config('tally.erasing', 'off', true);
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
set search_path = ''
as $$
  select coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r), '-infinity')
$$;

comment on function tally._retained_since() is
  'Start of the retained raw log: the end of the latest partition tally.apply_retention dropped, or -infinity (internal).';


-- >>> functions/0440_rebuild.sql
-- Rebuilds the lifetime, daily and billing-period rollups from the retained log: all users or one,
-- all dimensions or one (backfilling a newly declared dimension). Called by DBAs and `pgtally rebuild`.
create or replace function tally.rebuild(user_id text default null, dimension text default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  since    timestamptz;
  recomputed bigint;
begin
  if dimension is not null then
    perform tally._dimension_keys(dimension);  -- PT010 when not declared
  end if;
  -- Merges wait; writers and readers do not (writers never touch the rollups,
  -- readers switch to the rebuilt rows at commit).
  perform pg_advisory_xact_lock(7461, 1);
  since := tally._retained_since();
  perform tally._prepare_merge_batch();

  -- Each user's rebuilt days start at the first local day wholly inside the retained
  -- log; older days (whose raw events retention dropped) are kept as they are.
  create temporary table _tally_rebuild_scope on commit drop as
  select u.user_id, coalesce(s.time_zone, 'UTC') as tz, coalesce(s.billing_anchor_day, 1) as anchor_day,
         case when since = '-infinity' then '-infinity'::date
              else (since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day
    from (select distinct k.user_id from tally.event_keys k where rebuild.user_id is null or k.user_id = rebuild.user_id
          union
          select distinct t.user_id from tally.user_totals t where rebuild.user_id is null or t.user_id = rebuild.user_id) as u
    left join tally.user_settings s on s.user_id = u.user_id;
  create unique index on pg_temp._tally_rebuild_scope (user_id);
  analyze pg_temp._tally_rebuild_scope;

  -- 1. Take the rebuilt days out of the daily rollups.
  delete from tally.user_daily d
   using pg_temp._tally_rebuild_scope sc
   where d.user_id = sc.user_id and d.day >= sc.cutoff_day
     and (rebuild.dimension is null or d.dimension = rebuild.dimension);

  -- 2. Billing periods that start inside the retained log (all-dimension rebuilds only).
  if dimension is null then
    delete from tally.user_periods p
     using pg_temp._tally_rebuild_scope sc
     where p.user_id = sc.user_id and p.period_start >= sc.cutoff_day;
  end if;

  -- 3. One snapshot: the log's contributions minus what is still pending (the
  --    next merge adds the pending deltas again; min/max times are idempotent).
  insert into pg_temp._tally_merge
  select x.user_id, x.kind, x.occurred_at, x.attributes, x.events, x.failures, x.quantity, x.duration_ms,
         x.timed_events, x.cost,
         x.billable and tally._period_start((x.occurred_at at time zone sc.tz)::date, sc.anchor_day) >= sc.cutoff_day,
         x.is_use, x.occurred_at at time zone sc.tz, (x.occurred_at at time zone sc.tz)::date, sc.anchor_day
    from (
      select c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity, c.duration_ms,
             c.timed_events, c.cost, c.billable, c.is_use
        from tally.event_contributions c
       where rebuild.user_id is null or c.user_id = rebuild.user_id
      union all
      select p.user_id, p.kind, p.occurred_at, p.attributes, -p.events, -p.failures, -p.quantity, -p.duration_ms,
             -p.timed_events, -p.cost, p.billable, false
        from tally.pending_deltas p
       where rebuild.user_id is null or p.user_id = rebuild.user_id
    ) as x
    join pg_temp._tally_rebuild_scope sc on sc.user_id = x.user_id
   where (x.occurred_at at time zone sc.tz)::date >= sc.cutoff_day;
  get diagnostics recomputed = row_count;

  -- The applier also adds the batch to lifetime totals; step 4 replaces them.
  perform tally._apply_rollups(dimension);

  -- 4. Lifetime totals are the sums of the daily rollups, which keep all history
  --    (also the days older than the retained log).
  delete from tally.user_totals t
   using pg_temp._tally_rebuild_scope sc
   where t.user_id = sc.user_id and (rebuild.dimension is null or t.dimension = rebuild.dimension);
  insert into tally.user_totals
    (user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
  select d.user_id, d.dimension, d.value, sum(d.events), sum(d.failures), sum(d.quantity), sum(d.duration_ms),
         sum(d.timed_events), sum(d.cost), min(d.first_at), max(d.last_at)
    from tally.user_daily d
    join pg_temp._tally_rebuild_scope sc on sc.user_id = d.user_id
   where rebuild.dimension is null or d.dimension = rebuild.dimension
   group by d.user_id, d.dimension, d.value
   order by d.user_id, d.dimension, d.value;
  drop table pg_temp._tally_rebuild_scope;
  return recomputed;
end
$$;

comment on function tally.rebuild(text, text) is
  'Rebuilds lifetime, daily and billing-period rollups from the retained log for one user or all, for one dimension (e.g. backfill a newly declared one) or all; days older than the retained log keep their rollups. Writers are not blocked; merges wait. Returns the number of log rows recomputed (minus pending deltas).';


-- >>> functions/0450_verify.sql
-- Compares every aggregate with a recomputation from the retained log and reports drift.
-- Called by DBAs, `pgtally verify` (exit code 1 on drift) and the tests after every lifecycle operation.
create or replace function tally.verify(sample_size integer default 5)
returns table (check_name text, checked bigint, drifted bigint, sample text[])
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  since timestamptz := tally._retained_since();
begin
  if sample_size is null or sample_size < 0 then
    raise exception using errcode = 'PT011', column = 'sample_size', message = 'sample_size must be 0 or more';
  end if;

  -- daily: merged rollups + pending deltas vs. the log, for the days the retained log covers wholly.
  return query
  with users as (
    select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
           case when since = '-infinity' then '-infinity'::date
                else (since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day
      from (select distinct k.user_id from tally.event_keys k
            union select distinct d.user_id from tally.user_daily d) as u
      left join tally.user_settings s on s.user_id = u.user_id
  ), expected as (
    select c.user_id, d.name as dimension, (c.occurred_at at time zone us.tz)::date as day,
           tally._dimension_value(d.keys, c.kind, c.attributes) as value,
           sum(c.events) as events, sum(c.failures) as failures, sum(c.quantity) as quantity,
           sum(c.duration_ms) as duration_ms, sum(c.timed_events) as timed_events, sum(c.cost) as cost
      from tally.event_contributions c
      join users us on us.user_id = c.user_id
     cross join tally.dimensions d
     where (c.occurred_at at time zone us.tz)::date >= us.cutoff_day
     group by 1, 2, 3, 4
  ), actual as (
    select x.user_id, x.dimension, x.day, x.value, sum(x.events) as events, sum(x.failures) as failures,
           sum(x.quantity) as quantity, sum(x.duration_ms) as duration_ms, sum(x.timed_events) as timed_events,
           sum(x.cost) as cost
      from (
        select t.user_id, t.dimension, t.day, t.value, t.events, t.failures, t.quantity, t.duration_ms,
               t.timed_events, t.cost
          from tally.user_daily t join users us on us.user_id = t.user_id
         where t.day >= us.cutoff_day
        union all
        select p.user_id, d.name, (p.occurred_at at time zone us.tz)::date,
               tally._dimension_value(d.keys, p.kind, p.attributes), p.events, p.failures, p.quantity,
               p.duration_ms, p.timed_events, p.cost
          from tally.pending_deltas p join users us on us.user_id = p.user_id
         cross join tally.dimensions d
         where (p.occurred_at at time zone us.tz)::date >= us.cutoff_day
      ) as x
     where x.value is not null
     group by 1, 2, 3, 4
  ), compared as (
    select coalesce(e.user_id, a.user_id) as user_id, coalesce(e.dimension, a.dimension) as dimension,
           coalesce(e.day, a.day) as day, coalesce(e.value, a.value) as value,
           (e.events, e.failures, e.quantity, e.duration_ms, e.timed_events, e.cost)
             is distinct from (a.events, a.failures, a.quantity, a.duration_ms, a.timed_events, a.cost) as drift
      from (select * from expected where value is not null) e
      full join actual a using (user_id, dimension, day, value)
  )
  select 'daily rollups vs log'::text, count(*), count(*) filter (where c.drift),
         (array_agg(format('%s/%s/%s/%s', c.user_id, c.dimension, c.day, c.value) order by c.user_id, c.dimension, c.day, c.value)
            filter (where c.drift))[1:sample_size]
    from compared c;

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

  -- billing periods: counters + pending vs. the log, for periods inside the retained log.
  return query
  with users as (
    select u.user_id, coalesce(s.time_zone, 'UTC') as tz, coalesce(s.billing_anchor_day, 1) as anchor,
           case when since = '-infinity' then '-infinity'::date
                else (since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day
      from (select distinct k.user_id from tally.event_keys k
            union select distinct p.user_id from tally.user_periods p) as u
      left join tally.user_settings s on s.user_id = u.user_id
  ), expected as (
    select c.user_id, tally._period_start((c.occurred_at at time zone us.tz)::date, us.anchor) as period_start, c.kind,
           sum(c.events) as events, sum(c.quantity) as quantity, sum(c.duration_ms) as duration_ms, sum(c.cost) as cost
      from tally.event_contributions c join users us on us.user_id = c.user_id
     where c.billable
     group by 1, 2, 3
  ), actual as (
    select x.user_id, x.period_start, x.kind, sum(x.events) as events, sum(x.quantity) as quantity,
           sum(x.duration_ms) as duration_ms, sum(x.cost) as cost
      from (
        select t.user_id, t.period_start, t.kind, t.events, t.quantity, t.duration_ms, t.cost from tally.user_periods t
        union all
        select p.user_id, tally._period_start((p.occurred_at at time zone us.tz)::date, us.anchor), p.kind,
               p.events, p.quantity, p.duration_ms, p.cost
          from tally.pending_deltas p join users us on us.user_id = p.user_id
         where p.billable
      ) as x
     group by 1, 2, 3
  ), compared as (
    select coalesce(e.user_id, a.user_id) as user_id, coalesce(e.period_start, a.period_start) as period_start,
           coalesce(e.kind, a.kind) as kind,
           (e.events, e.quantity, e.duration_ms, e.cost) is distinct from (a.events, a.quantity, a.duration_ms, a.cost) as drift
      from expected e full join actual a using (user_id, period_start, kind)
  )
  select 'billing periods vs log'::text, count(*), count(*) filter (where c.drift),
         (array_agg(format('%s/%s/%s', c.user_id, c.period_start, c.kind) order by c.user_id, c.period_start, c.kind)
            filter (where c.drift))[1:sample_size]
    from compared c
    join users us on us.user_id = c.user_id
   where c.period_start >= us.cutoff_day;

  -- exactly-once keys: every retained log row has its key, owned by the same user.
  return query
  select 'log rows vs exactly-once keys'::text, count(*),
         count(*) filter (where k.event_id is null or k.user_id <> e.user_id),
         (array_agg(e.event_id order by e.event_id) filter (where k.event_id is null or k.user_id <> e.user_id))[1:sample_size]
    from tally.usage_events e
    left join tally.event_keys k on k.event_id = e.event_id;
end
$$;

comment on function tally.verify(integer) is
  'Recomputes the aggregates from the retained log and reports, per check, how many keys were compared, how many drifted and a sample of drifted keys. All drifted = 0 means the aggregates are exact.';


-- >>> functions/0500_set_user_settings.sql
-- Sets a user's time zone and billing anchor day (upsert); validates both.
-- Called by application backends when a user changes preferences.
create or replace function tally.set_user_settings(user_id text, time_zone text default 'UTC', billing_anchor_day integer default 1)
returns void
language plpgsql
security definer
set search_path = ''
as $$
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
  insert into tally.user_settings as s (user_id, time_zone, billing_anchor_day)
  values (set_user_settings.user_id, set_user_settings.time_zone, set_user_settings.billing_anchor_day)
  on conflict on constraint user_settings_pkey do update
    set time_zone = excluded.time_zone, billing_anchor_day = excluded.billing_anchor_day, updated_at = now();
end
$$;

comment on function tally.set_user_settings(text, text, integer) is
  'Sets a user''s time zone (local days of later merges) and billing anchor day (1-28).';


-- >>> functions/0510_declare_dimension.sql
-- Declares (or re-declares) a dimension from attribute keys, without writing SQL.
-- Called by product code or `pgtally`; history is backfilled by tally.rebuild.
create or replace function tally.declare_dimension(name text, keys text[], description text default null)
returns void
language plpgsql
security definer
set search_path = ''
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


-- >>> functions/0600_check_dimension.sql
-- Returns the keys of a declared dimension or raises PT010 naming it.
-- Called by every read function that takes a dimension name.
create or replace function tally._dimension_keys(dimension text)
returns text[]
language plpgsql
stable
set search_path = ''
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
  quantity    bigint,
  duration_ms bigint,
  cost        numeric,
  first_at    timestamptz,
  last_at     timestamptz,
  failures    bigint
)
language plpgsql
stable
set search_path = ''
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  -- One statement, one snapshot: a delta is either still pending or already merged.
  return query
  select x.value, sum(x.events)::bigint, sum(x.quantity)::bigint, sum(x.duration_ms)::bigint, sum(x.cost),
         min(x.first_at), max(x.last_at), sum(x.failures)::bigint
    from (
      select t.value, t.events, t.quantity, t.duration_ms, t.cost, t.first_at, t.last_at, t.failures
        from tally.user_totals t
       where t.user_id = lifetime_totals.user_id and t.dimension = lifetime_totals.dimension
      union all
      select tally._dimension_value(keys, p.kind, p.attributes), p.events, p.quantity, p.duration_ms, p.cost,
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
  'Lifetime totals of a user per value of a declared dimension (events, quantity, duration_ms, cost, first_at, last_at, failures), exact at commit.';


-- >>> functions/0620_daily_totals.sql
-- Daily totals of one user per local day and dimension value in a range of local days.
-- Called by application backends (trend charts) and the Python client's daily_totals().
create or replace function tally.daily_totals(user_id text, dimension text, from_day date, to_day date)
returns table (
  day         date,
  value       text,
  events      bigint,
  quantity    bigint,
  duration_ms bigint,
  cost        numeric,
  failures    bigint
)
language plpgsql
stable
set search_path = ''
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  if from_day is null or to_day is null or to_day < from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day (got %s .. %s)', coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  end if;
  return query
  select x.day, x.value, sum(x.events)::bigint, sum(x.quantity)::bigint, sum(x.duration_ms)::bigint, sum(x.cost),
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
                 tally._dimension_value(keys, q.kind, q.attributes) as value,
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
  quantity     bigint,
  duration_ms  bigint,
  cost         numeric
)
language sql
stable
set search_path = ''
as $$
  with settings as (
    select coalesce(s.time_zone, 'UTC') as tz, coalesce(s.billing_anchor_day, 1) as anchor
      from (select) as one
      left join tally.user_settings s on s.user_id = period_totals.user_id
  ), bounds as (
    select st.tz, st.anchor,
           tally._period_start((period_totals.at at time zone st.tz)::date, st.anchor) as p_start
      from settings st
  )
  select b.p_start, (b.p_start + interval '1 month')::date, x.kind,
         sum(x.events)::bigint, sum(x.quantity)::bigint, sum(x.duration_ms)::bigint, sum(x.cost)
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
   group by b.p_start, x.kind
   order by x.kind
$$;

comment on function tally.period_totals(text, timestamptz) is
  'Billing-period counters of a user per kind (billable, succeeded usage) for the period containing at; a new period starts at zero without any reset.';


-- >>> db/0900_triggers.sql
-- ============================================================================
-- Triggers on the usage log (after the functions they call).
-- ============================================================================

-- Rows inserted by tally.record_usage_batch arrive with recorded_at set and are
-- processed set-wise there; writers hold no privilege on recorded_at, so every
-- other insert goes through this trigger.
create trigger usage_events_before_insert_record
  before insert on tally.usage_events
  for each row
  when (new.recorded_at is null)
  execute function tally._trg_usage_events_before_insert_record();

create trigger usage_events_before_change_refuse
  before update or delete on tally.usage_events
  for each row
  execute function tally._trg_usage_events_refuse_change();

-- The statement trigger also refuses an UPDATE or DELETE that matches no row.
create trigger usage_events_before_change_refuse_statement
  before update or delete on tally.usage_events
  for each statement
  execute function tally._trg_usage_events_refuse_change();

create trigger usage_events_before_truncate_refuse
  before truncate on tally.usage_events
  for each statement
  execute function tally._trg_usage_events_refuse_change();

-- Statement triggers are not cloned to partitions: the default partition gets
-- its own here, monthly partitions get theirs from tally.ensure_partitions.
select tally._protect_partition('tally.usage_events_default');


-- >>> db/0950_seed.sql
-- ============================================================================
-- Data every installation starts with: the default dimensions and partitions.
-- ============================================================================

insert into tally.dimensions (name, keys, description) values
  ('kind',  '{kind}',  'Usage type (the kind column).'),
  ('voice', '{voice}', 'TTS voice (attributes.voice).'),
  ('model', '{model}', 'Model (attributes.model).')
on conflict do nothing;

select tally.ensure_partitions();


-- >>> db/0960_event_contributions.sql
-- ============================================================================
-- What each retained log row contributes to the aggregates: the same rules the
-- insert trigger and the batch path apply when they write a delta. Used by
-- tally.verify and tally.rebuild to recompute aggregates from the log.
-- ============================================================================

create view tally.event_contributions as
select e.event_id, e.user_id, e.kind, e.occurred_at, e.attributes,
       case when e.status = 'reversed' then -1
            when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end as events,
       case when e.status = 'failed' then 1 else 0 end as failures,
       case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end as quantity,
       case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end as duration_ms,
       case when e.duration_ms is null or e.status not in ('succeeded', 'reversed') then 0
            when e.status = 'reversed' then -1 when e.corrects_event_id is not null then 0 else 1 end as timed_events,
       case when e.status in ('succeeded', 'reversed') then e.cost else 0 end as cost,
       e.billable and e.status in ('succeeded', 'reversed') as billable,
       e.status = 'succeeded' and e.corrects_event_id is null as is_use
  from tally.usage_events e;

comment on view tally.event_contributions is
  'Signed contribution of every retained log row (events, failures, amounts, billable, is_use), by the rules the insert trigger applies (internal; verify and rebuild recompute from it).';


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
  loop
    execute format('revoke all on %s from public', t.rel);
    execute format('alter table %s enable row level security', t.rel);
    if t.per_user then
      execute format('create policy %I on %s for select to tally_reader using (user_id = tally.current_user_id())',
                     format('readers see their own %s', replace(t.relname, '_', ' ')), t.rel);
    elsif t.relname = any (array['dimensions']) then
      execute format('create policy %I on %s for select to tally_reader, tally_analyst using (true)',
                     format('everyone reads %s', replace(t.relname, '_', ' ')), t.rel);
      execute format('grant select on %s to tally_reader, tally_analyst', t.rel);
    end if;
  end loop;
end
$$;

-- Writers append: INSERT/COPY on the contract columns (not recorded_at), the record functions.
create policy "writers append usage events" on tally.usage_events for insert to tally_writer with check (true);
grant insert (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
              attributes, corrects_event_id)
  on tally.usage_events to tally_writer;
grant execute on function
  tally.record_usage(text, text, text, bigint, timestamptz, bigint, numeric, text, text, boolean, jsonb, text),
  tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]),
  tally.begin_staging(),
  tally.record_usage_staged(),
  tally.reverse_usage(text, text),
  tally.amend_usage(text, text, bigint, bigint, numeric)
  to tally_writer;

-- Readers see one user (row-level security on every per-user table) through the read API.
grant select on tally.usage_events, tally.pending_deltas, tally.user_totals, tally.user_daily, tally.user_periods,
                tally.user_settings
  to tally_reader;
grant execute on function
  tally.current_user_id(),
  tally._dimension_keys(text),
  tally._dimension_value(text[], text, jsonb),
  tally._dimension_value_combined(text[], text, jsonb),
  tally._period_start(date, integer),
  tally.lifetime_totals(text, text),
  tally.daily_totals(text, text, date, date),
  tally.period_totals(text, timestamptz)
  to tally_reader;


-- >>> db/0995_ownership.sql
-- ============================================================================
-- Ownership: tally_owner owns the schema and every object in it, so SECURITY
-- DEFINER functions run as tally_owner and only its members can migrate.
-- Skipped (with a notice) when the installing role may not give objects away.
-- ============================================================================

do $$
declare
  obj record;
begin
  if not (select rolsuper from pg_roles where rolname = current_user)
     and not pg_has_role(current_user, 'tally_owner', 'member') then
    raise notice 'pgtally: % is neither superuser nor a member of tally_owner; objects stay owned by %',
      current_user, current_user;
    return;
  end if;
  execute 'alter schema tally owner to tally_owner';
  for obj in
    select format('alter %s %s owner to tally_owner',
                  case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
                  c.oid::regclass) as stmt
      from pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')  -- owned sequences follow their table
    union all
    select format('alter %s %s owner to tally_owner', case p.prokind when 'p' then 'procedure' else 'function' end,
                  p.oid::regprocedure)
      from pg_proc p
     where p.pronamespace = 'tally'::regnamespace
  loop
    execute obj.stmt;
  end loop;
end
$$;
