-- ============================================================================
-- Locks that only the owner can take. pgtally serializes merges, retention,
-- erasure, rebuilds, partition creation, refreshes, quota checks and
-- subscription changes on rows of these tables, never on advisory locks: any
-- role that can connect may take an advisory lock (and so stall the ledger),
-- but a row lock needs UPDATE on the table, which no role but tally_owner has.
-- ============================================================================

create table tally.locks (
  name text primary key
);

comment on table tally.locks is
  'One row per global lock (merge, partitions, refresh): SECURITY DEFINER functions lock a row FOR UPDATE instead of taking an advisory lock, which any role could take first (internal, owner only).';

insert into tally.locks (name) values ('merge'), ('partitions'), ('refresh');

create table tally.user_locks (
  user_id text not null,
  scope   text not null,
  primary key (user_id, scope)
);

comment on table tally.user_locks is
  'One row per user and scope (quota:<kind>, subscription), created on first use and locked FOR UPDATE to serialize quota checks and subscription changes of one user (internal, owner only).';
