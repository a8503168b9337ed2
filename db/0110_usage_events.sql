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
  corrects_event_id text,
  plan              text
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
comment on column tally.usage_events.plan is 'The plan in force for the user at occurred_at, as known when the event was recorded (the running subscription, else the default plan; NULL when neither); set by the database, never by writers.';

-- Rows for a month without its own partition land here and are moved out by
-- tally.ensure_partitions, so an insert never fails for lack of a partition.
create table tally.usage_events_default partition of tally.usage_events default;
comment on table tally.usage_events_default is
  'Catch-all partition of tally.usage_events; tally.ensure_partitions moves its rows into monthly partitions.';

create index usage_events_user_time on tally.usage_events (user_id, occurred_at);

-- Readers' window on the log: the log itself has no row-level security (PostgreSQL
-- refuses COPY FROM into a table whose policies apply to the user, and writers COPY),
-- so no role but the owner may read it; a reader reads the rows of the user named by
-- tally.user_id here. security_barrier keeps a reader's own WHERE clauses (which
-- could call a leaky function) from running before the view's user filter.
-- On Citus, pgtally distribute points this view at tally._my_usage_events_distributed()
-- (functions/0115): a shard query runs as the reader, who may not read the log's shards.
create view tally.my_usage_events with (security_barrier) as
select e.event_id, e.user_id, e.kind, e.occurred_at, e.recorded_at, e.quantity, e.duration_ms, e.cost, e.status,
       e.error_code, e.billable, e.attributes, e.corrects_event_id, e.plan
  from tally.usage_events e
 where e.user_id = tally.current_user_id();

comment on view tally.my_usage_events is
  'The raw usage events of the user named by the session setting tally.user_id (none when unset): how tally_reader reads the log, which it may not read directly.';

-- One-time tokens of the set-wise insert path (internal). tally.record_usage_batch
-- writes one just before its INSERT into the log and sets tally.batch_token to it;
-- the log's statement trigger consumes it, and only then does the row trigger let
-- rows with recorded_at set through unchecked. Unlogged: a token lives for part of
-- one transaction, so it needs no WAL and nothing is lost in a crash.
create unlogged table tally.batch_tokens (
  token text not null primary key,
  xact  xid8 not null default pg_current_xact_id()
);

comment on table tally.batch_tokens is
  'One-time tokens that let tally.record_usage_batch insert pre-validated rows into the usage log set-wise (internal, owner only); each is consumed by the INSERT it was issued for.';
comment on column tally.batch_tokens.xact is 'The transaction that issued the token; a token is valid in that transaction only.';
