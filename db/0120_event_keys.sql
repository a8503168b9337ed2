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
