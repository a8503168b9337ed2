-- A grouping key (dimension value, session id) of at most 200 characters: a longer text becomes its
-- first 160 characters, '...' and the MD5 of the whole text. Called by tally._dimension_value and tally._session_key.
--
-- Attributes may hold up to 16 kB, but a key that long would not fit a rollup's primary
-- key index and would stop the merge; distinct long texts stay distinct keys. The callers
-- test the length first, so this runs only for the rare long text.
create or replace function tally._bounded_key(v text)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case when length(v) <= 200 then v else left(v, 160) || '...' || md5(v) end
$$;

comment on function tally._bounded_key(text) is
  'A dimension value or session id as stored: unchanged up to 200 characters, else its first 160 characters, ''...'' and the MD5 of the whole text (distinct texts stay distinct keys that fit the rollups'' indexes).';
