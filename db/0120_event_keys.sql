-- ============================================================================
-- Exactly-once: one row per (user_id, event_id) ever recorded, across all partitions.
-- ============================================================================

-- The key is per user: an event_id names one event of one user. Every row of a
-- user (log, key, deltas, rollups) then shares the user's key, so a distributed
-- install keeps all of them on the user's shard and the insert trigger never
-- reaches another node (docs/producers.md). Collation C: byte-wise comparisons
-- are cheaper than locale-aware ones, and an idempotency key needs equality only.
create table tally.event_keys (
  user_id     text        not null,
  event_id    text        collate "C" not null,
  occurred_at timestamptz not null,
  correctable boolean     not null,
  primary key (user_id, event_id)
);

comment on table tally.event_keys is
  'Every (user_id, event_id) recorded, kept after its raw partition is dropped so the deduplication window is forever (internal). Also locates an original event for corrections.';
comment on column tally.event_keys.correctable is
  'The event is a succeeded original (not itself a correction), so it may be amended or reversed.';

-- One reversal per original, enforced by a key so two concurrent reversals
-- with different event_ids cannot both count.
create table tally.reversals (
  user_id           text not null,
  original_event_id text collate "C" not null,
  event_id          text collate "C" not null,
  primary key (user_id, original_event_id)
);

comment on table tally.reversals is
  'The reversal recorded for each reversed event (internal): an original is reversed at most once, whatever the path and concurrency.';
