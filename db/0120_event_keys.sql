-- ============================================================================
-- Exactly-once: one row per event_id ever recorded, across all partitions.
-- ============================================================================

-- Collation C: byte-wise comparisons are cheaper than locale-aware ones, and an
-- idempotency key needs equality only.
create table tally.event_keys (
  event_id    text        collate "C" primary key,
  user_id     text        not null,
  occurred_at timestamptz not null
);

comment on table tally.event_keys is
  'Every event_id recorded, kept after its raw partition is dropped so the deduplication window is forever (internal). Also locates an original event for corrections.';
