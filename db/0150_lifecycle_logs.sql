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
