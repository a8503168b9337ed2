-- The user a tally_reader session may see: the tally.user_id setting (NULL when unset: nothing is visible).
-- Called by the row-level security policies; application backends set it per request.
--
-- Not pinned to a search_path so policies can inline it (it calls one pg_catalog
-- function by its qualified name).
create or replace function tally.current_user_id()
returns text
language sql
stable
parallel safe
as $$
  select pg_catalog.current_setting('tally.user_id', true)
$$;

comment on function tally.current_user_id() is
  'The user id a reader session is scoped to (setting tally.user_id, e.g. SET LOCAL tally.user_id = ''user-42''); NULL when unset.';
