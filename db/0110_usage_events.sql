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
