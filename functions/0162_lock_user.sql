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
