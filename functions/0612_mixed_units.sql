-- Whether a user's quantities span several units (kinds whose non-zero quantities count in different units).
-- Called by the reads that add quantities over all kinds: they answer NULL then, never a sum in no unit.
create or replace function tally._mixed_units(user_id text)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select count(distinct tally._kind_unit(t.value)) > 1
    from tally.lifetime_totals(_mixed_units.user_id, 'kind') t
   where t.quantity <> 0
$$;

comment on function tally._mixed_units(text) is
  'True when the user''s kinds with a non-zero quantity count in more than one unit: reads over all kinds then give a NULL quantity (internal).';
