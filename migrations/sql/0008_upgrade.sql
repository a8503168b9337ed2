-- Revision 0008: the marks of the days the refresh re-aggregates (tally.admin_daily_stale) become insert-only,
-- one row per day and marking transaction: writers marking the same days no longer wait for each other or for
-- an uncommitted refresh, and can no longer deadlock on the marks; the refresh deletes exactly the marks it read.
-- Changed functions are replaced in place (same signatures): their owners and grants stay.

alter table tally.admin_daily_stale
  drop constraint admin_daily_stale_pkey,
  add constraint admin_daily_stale_pkey primary key (day, version);

comment on table tally.admin_daily_stale is
  'UTC days to re-aggregate into tally.admin_daily at the next refresh; day -infinity means every day. version is the transaction that marked the day (one row per day and marking transaction, insert-only): the refresh deletes the rows it read, so a day marked by a transaction the refresh could not see stays marked for the next one.';

-- functions/0859_trg_admin_daily_stale.sql
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

-- functions/0858_refresh_admin_daily.sql
-- Brings tally.admin_daily up to date: re-aggregates the days marked stale since the last refresh and the days with
-- pending deltas (every day the first time, after a change of tally.kinds, and on Citus).
-- Called by tally.refresh_analytics only, last.
create or replace function tally._refresh_admin_daily()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  stale_days     date[];
  stale_versions xid8[];
  pending_days   date[];
  days           date[];
  distributed    boolean := tally._is_distributed();
begin
  -- The marks committed before this point; a transaction that marks a day later adds a row
  -- of its own, which stays for the next refresh.
  select coalesce(array_agg(s.day order by s.day, s.version), '{}'),
         coalesce(array_agg(s.version order by s.day, s.version), '{}')
    into stale_days, stale_versions
    from tally.admin_daily_stale s;
  -- The rows include pending deltas: their days are re-aggregated at every refresh while they are pending.
  select coalesce(array_agg(distinct d.day), '{}') into pending_days
    from tally._analytics_delta_values('-infinity', 'infinity') d;

  if distributed or '-infinity' = any (stale_days) then
    -- Every day: on Citus the stale days are not tracked (it allows no statement
    -- trigger on the distributed rollup); after a change of the kinds' units.
    delete from tally.admin_daily;
    insert into tally.admin_daily select * from tally._admin_daily_rows(null);
  else
    days := array(select distinct u.day from unnest(stale_days || pending_days) as u(day) order by 1);
    if cardinality(days) > 0 then
      delete from tally.admin_daily a where a.day = any (days);
      insert into tally.admin_daily select * from tally._admin_daily_rows(days);
    end if;
  end if;

  if not distributed then
    -- Unmark exactly the marks read above. Writers only ever add rows (with their own transaction
    -- id), so this deletes no row a writer could be adding or changing: the refresh never waits for a
    -- writer and no writer waits for it. A day with pending deltas needs no mark of its own: it is
    -- re-aggregated while they are pending, and the merge that takes them into the rollup marks it.
    delete from tally.admin_daily_stale s
     using unnest(stale_days, stale_versions) as r(day, version)
     where s.day = r.day and s.version = r.version;
  end if;
end
$$;

comment on function tally._refresh_admin_daily() is
  'Re-aggregates into tally.admin_daily the UTC days marked in tally.admin_daily_stale and the days with pending deltas (every day when -infinity is marked, or on Citus), then deletes the marks it read; a mark added by a transaction it could not see stays for the next refresh (internal; called last by tally.refresh_analytics).';

-- functions/0826_analytics_views.sql (its comment)
comment on function tally._analytics_views() is
  'Names of what tally.refresh_analytics keeps in the tally schema, in refresh order: the admin materialized views, the peer distribution, then tally.admin_daily (a table re-aggregated for the days that changed since the last refresh) (internal).';
