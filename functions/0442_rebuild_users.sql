-- The users a full rebuild and verify cover: every user with a key, a pending delta or a row in any table derived from the log.
-- Called by tally._rebuild_scope (so by tally.rebuild and tally.verify) and by `pgtally rebuild`, which rebuilds them one by one.
create or replace function tally.rebuild_users()
returns table (user_id text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A row of a derived table for a user the log does not know (a hand edit) must be
  -- found and removed too, so every derived table is listed, not only the keys.
  -- (PL/pgSQL, not SQL: the tables it names are created after it in install order.)
  return query
  select k.user_id from tally.event_keys k
  union select p.user_id from tally.pending_deltas p
  union select t.user_id from tally.user_totals t
  union select d.user_id from tally.user_daily d
  union select p.user_id from tally.user_periods p
  union select s.user_id from tally.user_sessions s
  union select h.user_id from tally.user_hours h
  union select v.user_id from tally.user_daily_values v
  union select f.user_id from tally.user_kind_days f
  union select o.user_id from tally.user_daily_ops o
  union select d.user_id from tally.user_daily_durations d;
end
$$;

comment on function tally.rebuild_users() is
  'The users tally.rebuild() and tally.verify() cover: every user with an exactly-once key, a pending delta or a row in a table derived from the log (rollups, sessions, hours, admin sources). `pgtally rebuild` rebuilds them one transaction each.';
