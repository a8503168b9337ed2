-- Brings tally.admin_daily up to date: re-aggregates the days marked stale since the last refresh and the days with
-- pending deltas (every day the first time, after a change of a kind's unit or of the dimensions, and on Citus).
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
