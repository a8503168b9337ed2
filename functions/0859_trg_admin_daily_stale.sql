-- Statement trigger: marks the UTC days a statement changed in tally.user_daily_values (its transition tables are
-- named by the trigger's arguments) for re-aggregation into tally.admin_daily at the next refresh; with no argument
-- (a change of tally.kinds, a TRUNCATE) it marks every day.
-- Fired by every writer of the rollup (the merge, rebuild, erasure, a dimension's backfill) and of tally.kinds.
create or replace function tally._trg_admin_daily_stale()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  upsert constant text := 'insert into tally.admin_daily_stale as s (day, version)'
    ' select u.day, pg_catalog.pg_current_xact_id() from (%s) u order by 1'
    ' on conflict (day) do update set version = excluded.version';
begin
  if tg_nargs = 0 then
    insert into tally.admin_daily_stale as s (day, version) values ('-infinity', pg_current_xact_id())
    on conflict (day) do update set version = excluded.version;
  -- The transition tables by name (visible to the statements this trigger runs), their
  -- days in order, as the refresh locks them: concurrent writers and the refresh queue,
  -- never deadlock.
  elsif tg_nargs = 1 then
    execute pg_catalog.format(upsert, pg_catalog.format('select distinct t.day from %I t', tg_argv[0]));
  else
    execute pg_catalog.format(upsert, pg_catalog.format('select t.day from %I t union select t.day from %I t',
                                                        tg_argv[0], tg_argv[1]));
  end if;
  return null;
end
$$;

comment on function tally._trg_admin_daily_stale() is
  'Statement trigger of tally.user_daily_values (after insert, update, delete: the days of its transition tables) and of tally.kinds and TRUNCATE (no argument: every day): marks UTC days for re-aggregation into tally.admin_daily at the next refresh (internal).';
