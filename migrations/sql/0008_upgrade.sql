-- Revision 0008: the marks of the days the refresh re-aggregates (tally.admin_daily_stale) become insert-only,
-- one row per day and marking transaction: writers marking the same days no longer wait for each other or for
-- an uncommitted refresh, and can no longer deadlock on the marks; the refresh deletes exactly the marks it read.
-- tally.admin_trend reads only the days of its range from the daily totals (it read every day of the dimension).
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

-- functions/0863_admin_trend.sql
-- Daily series (sparklines) per value of a dimension, zero-filled, in UTC days, optionally of one plan: events per day of chosen kinds, voices, models.
-- Called by dashboards, admin.trend() and `pgtally admin`.
create or replace function tally.admin_trend(dimension text default 'kind', only_values text[] default null,
                                             from_day date default null, to_day date default null,
                                             plan text default null)
returns table (day date, value text, events bigint, failures bigint, quantity numeric, unit text, duration_ms numeric,
               cost numeric, users bigint, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  last_day  date := coalesce(to_day, (now() at time zone 'UTC')::date);
  first_day date := coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29);
  p         text := coalesce(tally._analytics_plan(plan), '*');
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  if last_day < first_day or last_day - first_day > 3660 then
    raise exception using errcode = 'PT011', column = 'from_day',
      message = format('from_day %s to to_day %s is not a range of 1 to 3661 days', first_day, last_day);
  end if;
  -- A day on which fewer users than the minimum group size used a value counts
  -- as a day without use of it (0), so a small group's days are not revealed
  -- either; a value with no such day in the range is not listed.
  return query
  with vals as (
    select v.value from unnest(only_values) as v(value)
    union
    select distinct d.value from tally.admin_daily d
     where only_values is null and d.dimension = admin_trend.dimension and d.plan = p
       and d.day between first_day and last_day
       and (d.users >= min_users or min_users <= 1)
  )
  select g.day::date, vals.value, coalesce(d.events, 0), coalesce(d.failures, 0),
         -- NULL when the value's quantities that day count in different units (never added).
         case when d.value is null then 0 else d.quantity end, d.unit,
         coalesce(d.duration_ms, 0), coalesce(d.cost, 0), coalesce(d.users, 0),
         tally._refreshed_at('admin_daily')
    from generate_series(first_day, last_day, interval '1 day') as g(day)
   cross join vals
    left join tally.admin_daily d
           on d.dimension = admin_trend.dimension and d.plan = p and d.day = g.day::date and d.value = vals.value
          and (d.users >= min_users or min_users <= 1)
          -- The range again, for the planner: it cannot derive it from g.day, and would read every day.
          and d.day between first_day and last_day
   order by vals.value, g.day;
end
$$;

comment on function tally.admin_trend(text, text[], date, date, text) is
  'Platform series per UTC day (from_day through to_day, both included; default the 30 days ending today) and value of a declared dimension, zero-filled: events, failures, quantity and its unit (NULL both when the day''s quantities of the value count in different units), duration, cost, active users. With plan: only events recorded under that plan. A day with fewer users of a value than the minimum group size shows 0, as a day without use. only_values picks values (default: all with a day shown in the range). As of refreshed_at (today''s row: the day up to the refresh). Requires tally_analyst.';
