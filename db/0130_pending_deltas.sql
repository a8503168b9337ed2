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
  is_use       boolean     not null,
  plan         text
) with (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 5000);

comment on table tally.pending_deltas is
  'Signed contributions of recorded events not yet merged into the rollups (internal). Append-only for writers, so concurrent writers never wait on each other''s rows; drained by tally.merge_pending.';
comment on column tally.pending_deltas.events is '+1 for a succeeded event, -1 for a reversal, 0 for an amendment or a failure.';
comment on column tally.pending_deltas.billable is 'Counts towards the billing period: billable and not failed.';
comment on column tally.pending_deltas.plan is 'The event''s plan in force (tally.usage_events.plan).';
comment on column tally.pending_deltas.is_use is 'A succeeded original event: moves first_at/last_at.';

-- Without deduplication: a hot user's deltas all carry the same key, and
-- rewriting posting lists under the leaf page lock would serialize its writers.
create index pending_deltas_user on tally.pending_deltas (user_id) with (deduplicate_items = off);
