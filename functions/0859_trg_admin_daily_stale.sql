-- Statement trigger: marks for re-aggregation into tally.admin_daily at the next refresh the UTC days a statement
-- changed in tally.user_daily_values, or every day (-infinity) when a statement changed the unit of a kind in
-- tally.kinds (or added, removed or renamed a kind: a kind never declared counts in a unit of its own), changed
-- tally.dimensions (their keys decide which pending deltas have a value), or emptied a table.
-- The trigger's arguments name its transition tables. Fired by every writer of the rollup (the merge, rebuild,
-- erasure, a dimension's backfill) and of tally.kinds (tally.declare_kind).
create or replace function tally._trg_admin_daily_stale()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Insert-only, one row per day and transaction: a conflict can only be with this transaction's own
  -- row (an earlier statement), so marking never waits for another writer or for the refresh.
  mark constant text := 'insert into tally.admin_daily_stale (day, version)'
    ' select u.day, pg_catalog.pg_current_xact_id() from (%s) u'
    ' on conflict (day, version) do nothing';
  -- A change of the dimensions (their keys decide which deltas have a value) or an emptied table: every day.
  units_changed boolean := tg_op = 'TRUNCATE' or tg_table_name = 'dimensions';
begin
  if tg_table_name = 'kinds' and tg_op = 'UPDATE' then
    -- Any (kind, unit) pair that is not on both sides: a new unit, or a kind renamed.
    execute pg_catalog.format('select exists ((select o.kind, o.unit from %1$I o except select n.kind, n.unit from %2$I n)'
                              ' union all (select n.kind, n.unit from %2$I n except select o.kind, o.unit from %1$I o))',
                              tg_argv[0], tg_argv[1])
       into units_changed;
  elsif tg_table_name = 'kinds' and tg_nargs = 1 then
    -- An INSERT ... ON CONFLICT DO UPDATE fires the INSERT trigger too, with no row when it only updated.
    execute pg_catalog.format('select exists (select from %I)', tg_argv[0]) into units_changed;
  elsif tg_nargs = 1 then
    -- The transition tables by name (visible to the statements this trigger runs).
    execute pg_catalog.format(mark, pg_catalog.format('select distinct t.day from %I t', tg_argv[0]));
  elsif tg_nargs = 2 then
    execute pg_catalog.format(mark, pg_catalog.format('select t.day from %I t union select t.day from %I t',
                                                        tg_argv[0], tg_argv[1]));
  end if;
  if units_changed then
    insert into tally.admin_daily_stale (day, version) values ('-infinity', pg_current_xact_id())
    on conflict (day, version) do nothing;
  end if;
  return null;
end
$$;

comment on function tally._trg_admin_daily_stale() is
  'Statement trigger of tally.user_daily_values (the days of its transition tables), of tally.kinds (every day, -infinity, when a unit changed or a kind was added, removed or renamed), of tally.dimensions (every day) and of TRUNCATE (every day): marks UTC days for re-aggregation into tally.admin_daily at the next refresh (internal).';
