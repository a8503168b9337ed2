-- Revision 0007: the platform's daily totals (tally.admin_daily) become a table the refresh keeps day by day: it
-- re-aggregates only the UTC days whose per-user rows changed since the last refresh (marked by statement
-- triggers on tally.user_daily_values and tally.kinds in tally.admin_daily_stale) and the days with pending
-- deltas, instead of every user-day. The rows of the materialized view it replaces are carried over, and
-- every day is marked, so the first refresh after the upgrade re-aggregates them all.
-- Changed functions are replaced in place (same signatures): their owners and grants stay.

-- db/0832_admin_daily.sql
-- Platform totals per dimension, plan, UTC day and value: the trend series (events per day per kind, voice, model, ...).
-- Kept by tally.refresh_analytics, which re-aggregates only the days whose per-user rows changed since the last
-- refresh (tally.admin_daily_stale); read by tally.admin_trend and tally.admin_week_over_week.
create table tally.admin_daily (
  dimension   text    not null,
  plan        text    not null,
  day         date    not null,
  value       text    not null,
  events      bigint  not null,
  succeeded   bigint  not null,
  failures    bigint  not null,
  quantity    numeric,
  unit        text,
  duration_ms numeric not null,
  cost        numeric not null,
  users       bigint  not null,
  primary key (dimension, plan, day, value)
);

comment on table tally.admin_daily is
  'Platform totals per dimension, plan in force (''*'' = all plans, '''' = none), UTC day and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (NULL both when the value''s quantities that day count in different units), duration, cost and users active with that value that day. From tally.user_daily_values plus pending deltas, as of the refresh: each refresh re-aggregates the days listed in tally.admin_daily_stale and the days with pending deltas (every day the first time, after a unit or dimension change, and on Citus), so after a refresh during which no writer committed its rows equal a full re-aggregation (tally._admin_daily_rows(NULL)); a change committed during a refresh is taken by the next. Read through tally.admin_trend and tally.admin_week_over_week.';

-- The UTC days whose rows in tally.admin_daily the next refresh re-aggregates. Written by a statement trigger on
-- tally.user_daily_values (every writer: the merge, rebuild, erasure, a dimension's backfill), and by a change of
-- a kind's unit or of the dimensions (every day); the refresh deletes the rows it has taken into account.
create table tally.admin_daily_stale (
  day     date not null primary key,
  version xid8 not null
);

comment on table tally.admin_daily_stale is
  'UTC days to re-aggregate into tally.admin_daily at the next refresh; day -infinity means every day. version is the transaction that last marked the day: the refresh deletes a row only if no transaction marked it again after the refresh read it, so a change committed during a refresh is taken at the next one.';

-- functions/0856_admin_daily_rows.sql
-- The rows of tally.admin_daily for some UTC days (NULL: every day), aggregated from the per-user rows.
-- Called by tally._refresh_admin_daily (the days a refresh re-aggregates) and by tests (a full re-aggregation).
create or replace function tally._admin_daily_rows(days date[])
returns setof tally.admin_daily
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- One query text for every day and for some days (only its filter differs), so the
  -- incremental refresh and a full re-aggregation cannot drift apart. With days given,
  -- the rollup is read through its (dimension, day) index, one dimension at a time
  -- (the dimensions present found by skipping through the same index).
  return query execute pg_catalog.format($q$
  with %3$s rows as (
    select v.user_id, v.day, v.plan, v.dimension, v.value, v.kind, v.events, v.succeeded, v.failures, v.quantity,
           v.duration_ms, v.cost
      from %1$s
    union all
    -- Pending deltas (no window bounds: every whole day).
    select d.user_id, d.day, d.plan, d.dimension, d.value, d.kind, d.events, d.succeeded, d.failures, d.quantity,
           d.duration_ms, d.cost
      from tally._analytics_delta_values('-infinity', 'infinity') d
     where true %2$s
  ), units as (
    -- The unit of each row's quantity (tally.kinds; a kind never declared counts in a unit of its own).
    select r.*, coalesce(k.unit, r.kind) as unit
      from rows r
      left join tally.kinds k on k.kind = r.kind
  ), per_user as (
    select case when grouping(r.plan) = 1 then '*' else r.plan end as plan, r.dimension, r.day, r.value,
           sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
           sum(r.quantity) as quantity, sum(r.duration_ms) as duration_ms, sum(r.cost) as cost,
           min(r.unit) filter (where r.quantity <> 0) as lo, max(r.unit) filter (where r.quantity <> 0) as hi,
           min(r.unit) as lo_any, max(r.unit) as hi_any,
           sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
      from units r
     group by grouping sets ((r.plan, r.dimension, r.day, r.value, r.user_id), (r.dimension, r.day, r.value, r.user_id))
  ), groups as (
    select u.dimension, u.plan, u.day, u.value, sum(u.events) as events, sum(u.succeeded) as succeeded,
           sum(u.failures) as failures, sum(u.quantity) as quantity, min(u.lo) as lo, max(u.hi) as hi,
           min(u.lo_any) as lo_any, max(u.hi_any) as hi_any, sum(u.duration_ms) as duration_ms, sum(u.cost) as cost,
           count(*) filter (where u.active) as users
      from per_user u
     group by u.dimension, u.plan, u.day, u.value
  )
  select g.dimension, g.plan, g.day, g.value,
         g.events::bigint,
         g.succeeded::bigint,
         g.failures::bigint,
         -- Quantities of kinds of different units are never added: NULL then.
         case when g.lo is distinct from g.hi then null else g.quantity end,
         case when g.lo is distinct from g.hi then null when g.lo is not null then g.lo
              when g.lo_any = g.hi_any then g.lo_any end,
         g.duration_ms,
         g.cost,
         g.users
    from groups g
  $q$,
    case when days is null then 'tally.user_daily_values v'
         else 'dims join tally.user_daily_values v on v.dimension = dims.name and v.day = any ($1)' end,
    case when days is null then '' else 'and d.day = any ($1)' end,
    case when days is null then '' else $d$recursive dims (name) as (
      select min(x.dimension) from tally.user_daily_values x
      union all
      select (select min(x.dimension) from tally.user_daily_values x where x.dimension > dims.name)
        from dims
       where dims.name is not null
    ),$d$ end)
  using days;
end
$$;

comment on function tally._admin_daily_rows(date[]) is
  'The rows of tally.admin_daily for the given UTC days (NULL: every day): tally.user_daily_values plus pending deltas, per dimension, plan (''*'' = all plans), day and value, users counted once per group (internal; the refresh re-aggregates with it, tests compare the table with it).';

-- functions/0858_refresh_admin_daily.sql
-- Brings tally.admin_daily up to date: re-aggregates the days marked stale since the last refresh and the days with
-- pending deltas (every day the first time, after a change of tally.kinds, and on Citus).
-- Called by tally.refresh_analytics only, last (it holds the unmarked days' row locks until the refresh commits).
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
begin
  -- What was marked before this point; a transaction that marks a day later
  -- (with its own version) keeps the day for the next refresh.
  select coalesce(array_agg(s.day order by s.day), '{}'), coalesce(array_agg(s.version order by s.day), '{}')
    into stale_days, stale_versions
    from tally.admin_daily_stale s;
  -- The rows include pending deltas: their days are re-aggregated at every refresh while they are pending.
  select coalesce(array_agg(distinct d.day), '{}') into pending_days
    from tally._analytics_delta_values('-infinity', 'infinity') d;

  if tally._is_distributed() or '-infinity' = any (stale_days) then
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

  if not tally._is_distributed() then
    -- Unmark the days read above, unless marked again since (another version) or being
    -- marked now (locked by a writer: skipped, so the refresh never waits for a writer and
    -- cannot deadlock with one; such a day stays marked). A day with pending deltas needs no
    -- mark of its own: it is re-aggregated while they are pending, and the merge that takes
    -- them into the rollup marks it.
    delete from tally.admin_daily_stale s
     using unnest(stale_days, stale_versions) as r(day, version)
     where s.day = r.day and s.version = r.version
       and s.day in (select x.day from tally.admin_daily_stale x where x.day = any (stale_days)
                      order by x.day for update skip locked);
  end if;
end
$$;

comment on function tally._refresh_admin_daily() is
  'Re-aggregates into tally.admin_daily the UTC days marked in tally.admin_daily_stale and the days with pending deltas (every day when -infinity is marked, or on Citus), then unmarks the days it read unless another transaction marked them again meanwhile or is marking them now (skipped, never waited for) (internal; called last by tally.refresh_analytics).';

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
  upsert constant text := 'insert into tally.admin_daily_stale as s (day, version)'
    ' select u.day, pg_catalog.pg_current_xact_id() from (%s) u order by 1'
    ' on conflict (day) do update set version = excluded.version';
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
    -- The transition tables by name (visible to the statements this trigger runs), their days
    -- in order (rows are locked in one ordered statement).
    execute pg_catalog.format(upsert, pg_catalog.format('select distinct t.day from %I t', tg_argv[0]));
  elsif tg_nargs = 2 then
    execute pg_catalog.format(upsert, pg_catalog.format('select t.day from %I t union select t.day from %I t',
                                                        tg_argv[0], tg_argv[1]));
  end if;
  if units_changed then
    insert into tally.admin_daily_stale as s (day, version) values ('-infinity', pg_current_xact_id())
    on conflict (day) do update set version = excluded.version;
  end if;
  return null;
end
$$;

comment on function tally._trg_admin_daily_stale() is
  'Statement trigger of tally.user_daily_values (the days of its transition tables), of tally.kinds (every day, -infinity, when a unit changed or a kind was added, removed or renamed), of tally.dimensions (every day) and of TRUNCATE (every day): marks UTC days for re-aggregation into tally.admin_daily at the next refresh (internal).';

-- functions/0826_analytics_views.sql
-- The analytics the refresh keeps (the admin views, the users' peer distribution, the daily totals table), in refresh order.
-- Called by tally.refresh_analytics and tally.analytics_freshness (the one list to extend with a new view).
create or replace function tally._analytics_views()
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select array['admin_totals_mv', 'admin_overview_mv', 'admin_activity_mv', 'admin_leaderboards_mv',
               'admin_reliability_mv', 'admin_error_codes_mv', 'admin_cohorts_mv', 'admin_funnel_mv',
               'peer_distribution_mv', 'admin_daily']
$$;

comment on function tally._analytics_views() is
  'Names of what tally.refresh_analytics keeps in the tally schema, in refresh order: the admin materialized views, the peer distribution, then tally.admin_daily (a table re-aggregated for the days that changed; last, because it holds its stale days until the refresh commits) (internal).';

-- functions/0850_refresh_analytics.sql
-- Refreshes every admin materialized view CONCURRENTLY (readers are never blocked), brings tally.admin_daily up to date
-- (the days that changed) and logs each one in tally.refresh_log.
-- Called by pg_cron (tally.schedule_refresh), `pgtally refresh` and the demo; one at a time (a second caller returns 'skipped').
create or replace function tally.refresh_analytics()
returns table (view_name text, status text, started_at timestamptz, finished_at timestamptz, duration_ms numeric,
               row_count bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- The views' days are UTC days whoever refreshes them, whatever the session's time zone.
set timezone = 'UTC'
-- JIT compilation costs more than it saves on these aggregates (about 0.7 s per view).
set jit = off
-- The views aggregate every user-day: with the default 4 MB their sorts and hash tables spill to disk.
-- Per sort or hash node of the running statement (a hash may take hash_mem_multiplier times as much);
-- one refresh runs at a time.
set work_mem = '64MB'
as $$
#variable_conflict use_column
declare
  run_started timestamptz := clock_timestamp();
  v           text;
  t0          timestamptz;
  t1          timestamptz;
  n           bigint;
begin
  -- SECURITY DEFINER: only the owner of a materialized view may refresh it.
  -- Never two at once: a second caller does not queue behind a long refresh,
  -- it returns one row with status 'skipped' at once.
  if not tally._lock('refresh', wait => false) then
    raise notice 'pgtally: another refresh of the analytics is running; skipped';
    return query select null::text, 'skipped'::text, run_started, clock_timestamp(), 0::numeric, null::bigint;
    return;
  end if;
  -- CONCURRENTLY: readers keep reading the previous contents (the refresh takes
  -- an EXCLUSIVE lock, which does not conflict with SELECT). All views switch
  -- over together when the caller's transaction commits.
  foreach v in array tally._analytics_views() loop
    t0 := clock_timestamp();
    if v = 'admin_daily' then
      perform tally._refresh_admin_daily();  -- a table: only the days that changed
    else
      execute pg_catalog.format('refresh materialized view concurrently tally.%I', v);
    end if;
    t1 := clock_timestamp();
    execute pg_catalog.format('select count(*) from tally.%I', v) into n;
    insert into tally.refresh_log (run_started, view_name, started_at, finished_at, duration_ms, row_count)
    values (run_started, v, t0, t1, round(extract(epoch from t1 - t0) * 1000, 1), n);
    return query select v, 'refreshed'::text, t0, t1, round(extract(epoch from t1 - t0) * 1000, 1), n;
  end loop;
  delete from tally.refresh_log l where l.started_at < now() - interval '30 days';
end
$$;

comment on function tally.refresh_analytics() is
  'Refreshes every admin materialized view concurrently (readers never wait) and re-aggregates the days of tally.admin_daily that changed, in one transaction and logs start, end, duration and rows per view in tally.refresh_log; returns one row per view. Never runs twice at once: a second caller gets one row with status ''skipped'' (view_name NULL) at once. Merge pending deltas first (`pgtally refresh` does): the views read the merged rollups.';

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
   order by vals.value, g.day;
end
$$;

comment on function tally.admin_trend(text, text[], date, date, text) is
  'Platform series per UTC day (from_day through to_day, both included; default the 30 days ending today) and value of a declared dimension, zero-filled: events, failures, quantity and its unit (NULL both when the day''s quantities of the value count in different units), duration, cost, active users. With plan: only events recorded under that plan. A day with fewer users of a value than the minimum group size shows 0, as a day without use. only_values picks values (default: all with a day shown in the range). As of refreshed_at (today''s row: the day up to the refresh). Requires tally_analyst.';

-- functions/0865_admin_week_over_week.sql
-- Week-over-week cards: the 1, 2 or 4 complete weeks ending as_of against as many weeks before, optionally of one plan,
-- with absolute and % deltas and a trend flag. Called by dashboards, admin.week_over_week() and `pgtally admin`.
create or replace function tally.admin_week_over_week(as_of date default null, dimension text default 'kind',
                                                      weeks integer default 1, plan text default null)
returns table (metric text, value text, this_week numeric, last_week numeric, delta numeric, delta_pct numeric,
               trend text, week_start date, week_end date, previous_start date, previous_end date,
               refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  refreshed timestamptz := least(tally._refreshed_at('admin_activity_mv'), tally._refreshed_at('admin_daily'));
  -- The last UTC day the views hold completely: the day before the refresh.
  last_complete date := (coalesce(refreshed, now()) at time zone 'UTC')::date - 1;
  d         date := coalesce(as_of, last_complete);
  n         integer;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  if weeks is null or weeks not in (1, 2, 4) then
    raise exception using errcode = 'PT011', column = 'weeks',
      message = format('weeks must be 1, 2 or 4 (got %s)', coalesce(weeks::text, 'null'));
  end if;
  -- Complete windows only: never a partial week against a whole one.
  if d > last_complete then
    raise exception using errcode = 'PT011', column = 'as_of',
      message = format('as_of (%s) must be a UTC day the analytics hold completely: %s or earlier (refreshed at %s)',
                       d, last_complete, coalesce(refreshed::text, 'never'));
  end if;
  n := 7 * weeks;
  return query
  with act as (
    -- This window: the n days (d - n, d]; the last one: (d - 2n, d - n].
    select coalesce(sum(a.succeeded) filter (where a.day > d - n), 0) as s1,
           coalesce(sum(a.succeeded) filter (where a.day <= d - n), 0) as s0,
           coalesce(sum(a.failed) filter (where a.day > d - n), 0) as f1,
           coalesce(sum(a.failed) filter (where a.day <= d - n), 0) as f0,
           coalesce(sum(a.new_users) filter (where a.day > d - n), 0) as n1,
           coalesce(sum(a.new_users) filter (where a.day <= d - n), 0) as n0,
           coalesce(sum(a.billable_cost) filter (where a.day > d - n), 0) as b1,
           coalesce(sum(a.billable_cost) filter (where a.day <= d - n), 0) as b0,
           -- Distinct users active in each window: the 7, 14 or 28 days ending its last day.
           coalesce(max(case n when 7 then a.wau when 14 then a.active_14d else a.active_28d end)
                      filter (where a.day = d), 0) as a1,
           coalesce(max(case n when 7 then a.wau when 14 then a.active_14d else a.active_28d end)
                      filter (where a.day = d - n), 0) as a0,
           -- Paying users of each window (UTC days): a paid subscription (to the plan) in force
           -- at some moment of it, read live from the subscriptions.
           tally._paying_users((d - n + 1)::timestamp at time zone 'UTC', (d + 1)::timestamp at time zone 'UTC', p) as p1,
           tally._paying_users((d - 2 * n + 1)::timestamp at time zone 'UTC', (d - n + 1)::timestamp at time zone 'UTC', p)
             as p0
      from tally.admin_activity_mv a
     where a.plan = coalesce(p, '*') and a.day between d - 2 * n + 1 and d
  ), platform as (
    select coalesce(sum(x.events) filter (where x.day > d - n), 0) as e1,
           coalesce(sum(x.events) filter (where x.day <= d - n), 0) as e0,
           coalesce(sum(x.cost) filter (where x.day > d - n), 0) as c1,
           coalesce(sum(x.cost) filter (where x.day <= d - n), 0) as c0
      from tally.admin_daily x
     where x.dimension = 'kind' and x.plan = coalesce(p, '*') and x.day between d - 2 * n + 1 and d
  ), shown as (
    -- The whole platform counts everyone. One plan is a group: a window in which fewer
    -- users than the minimum group size used it reads as a window without use, and a
    -- count of users below the minimum reads 0.
    select a.*, pf.*,
           p is null or a.a1 >= min_users or min_users <= 1 as w1,
           p is null or a.a0 >= min_users or min_users <= 1 as w0
      from act a cross join platform pf
  ), per_value as (
    select x.value,
           coalesce(sum(x.events) filter (where x.day > d - n), 0) as e1,
           coalesce(sum(x.events) filter (where x.day <= d - n), 0) as e0,
           coalesce(sum(x.succeeded) filter (where x.day > d - n), 0) as s1,
           coalesce(sum(x.succeeded) filter (where x.day <= d - n), 0) as s0,
           coalesce(sum(x.failures) filter (where x.day > d - n), 0) as f1,
           coalesce(sum(x.failures) filter (where x.day <= d - n), 0) as f0,
           -- Quantities of different units are never added (a day that mixes them, or two days in two units).
           case when bool_or(x.quantity is null) filter (where x.day > d - n)
                     or count(distinct x.unit) filter (where x.day > d - n and x.quantity <> 0) > 1 then null
                else coalesce(sum(x.quantity) filter (where x.day > d - n), 0) end as q1,
           case when bool_or(x.quantity is null) filter (where x.day <= d - n)
                     or count(distinct x.unit) filter (where x.day <= d - n and x.quantity <> 0) > 1 then null
                else coalesce(sum(x.quantity) filter (where x.day <= d - n), 0) end as q0,
           coalesce(sum(x.duration_ms) filter (where x.day > d - n), 0) as m1,
           coalesce(sum(x.duration_ms) filter (where x.day <= d - n), 0) as m0,
           coalesce(sum(x.cost) filter (where x.day > d - n), 0) as c1,
           coalesce(sum(x.cost) filter (where x.day <= d - n), 0) as c0
      from tally.admin_daily x
     where x.dimension = admin_week_over_week.dimension and x.plan = coalesce(p, '*')
       and x.day between d - 2 * n + 1 and d
       -- The days admin_trend shows: a day with fewer users of the value than the
       -- minimum group size counts as none.
       and (x.users >= min_users or min_users <= 1)
     group by x.value
  ), cards (ord, metric, value, tw, lw) as (
    select 1, 'events', '*', case when s.w1 then s.e1 else 0 end::numeric, case when s.w0 then s.e0 else 0 end::numeric
      from shown s
    union all select 2, 'active_users', '*', case when s.w1 then s.a1 else 0 end, case when s.w0 then s.a0 else 0 end
      from shown s
    union all select 3, 'new_users', '*',
                     case when s.w1 and (p is null or s.n1 >= min_users or min_users <= 1) then s.n1 else 0 end,
                     case when s.w0 and (p is null or s.n0 >= min_users or min_users <= 1) then s.n0 else 0 end
      from shown s
    union all select 4, 'paying_users', '*',
                     case when p is null or s.p1 >= min_users or min_users <= 1 then s.p1 else 0 end,
                     case when p is null or s.p0 >= min_users or min_users <= 1 then s.p0 else 0 end
      from shown s
    union all select 5, 'success_rate', '*',
                     case when s.w1 then round(100.0 * s.s1 / nullif(s.s1 + s.f1, 0), 2) end,
                     case when s.w0 then round(100.0 * s.s0 / nullif(s.s0 + s.f0, 0), 2) end
      from shown s
    union all select 6, 'succeeded', '*', case when s.w1 then s.s1 else 0 end, case when s.w0 then s.s0 else 0 end
      from shown s
    union all select 7, 'failures', '*', case when s.w1 then s.f1 else 0 end, case when s.w0 then s.f0 else 0 end
      from shown s
    union all select 8, 'cost', '*', case when s.w1 then s.c1 else 0 end, case when s.w0 then s.c0 else 0 end
      from shown s
    union all select 9, 'billable_cost', '*', case when s.w1 then s.b1 else 0 end, case when s.w0 then s.b0 else 0 end
      from shown s
    union all select 10, 'events', v.value, v.e1, v.e0 from per_value v
    union all select 11, 'failures', v.value, v.f1, v.f0 from per_value v
    union all select 12, 'quantity', v.value, v.q1, v.q0 from per_value v
    union all select 13, 'duration_ms', v.value, v.m1, v.m0 from per_value v
    union all select 14, 'cost', v.value, v.c1, v.c0 from per_value v
    -- Success rate per value (per kind by default): succeeded / (succeeded + failed) attempts.
    union all select 15, 'success_rate', v.value, round(100.0 * v.s1 / nullif(v.s1 + v.f1, 0), 2),
                     round(100.0 * v.s0 / nullif(v.s0 + v.f0, 0), 2) from per_value v
  )
  select c.metric, c.value, c.tw, c.lw, c.tw - c.lw,
         round(100 * (c.tw - c.lw) / nullif(abs(c.lw), 0), 1),
         case when c.tw is null or c.lw is null then null
              when c.lw = 0 then case when c.tw > 0 then 'up' when c.tw < 0 then 'down' else 'stable' end
              when abs(c.tw - c.lw) <= 0.05 * abs(c.lw) then 'stable'
              when c.tw > c.lw then 'up'
              else 'down' end,
         d - n + 1, d, d - 2 * n + 1, d - n,
         refreshed
    from cards c
   order by c.ord, c.value;
end
$$;

comment on function tally.admin_week_over_week(date, text, integer, text) is
  'Week-over-week cards for the weeks (1, 2 or 4) of complete UTC days ending as_of (default: the last day complete at the refresh; a later day raises PT011) against as many weeks before (previous_start..previous_end): platform events, active users (distinct users active in the window), new users, paying users (live: users with a subscription at monthly_price > 0 in force at some moment of the window, UTC days), success rate %, attempts, cost, billable cost (value ''*''), then events, failures, quantity (NULL when its days count in different units), duration_ms, cost and success rate (succeeded / (succeeded + failed) attempts) per value of a declared dimension (default kind), summed over the days on which at least the minimum group size of users used the value (as admin_trend shows them). With plan: only events recorded under that plan (and its subscriptions); a window in which fewer users than the minimum group size used the plan reads as a window without use. delta = this - last, delta_pct relative to last (NULL when last is 0), trend up/down/stable (stable within 5%). Requires tally_analyst.';

-- The rows of the materialized view, as of its last refresh, and its place in the refresh log.
insert into tally.admin_daily select * from tally.admin_daily_mv;
drop materialized view tally.admin_daily_mv;
update tally.refresh_log l set view_name = 'admin_daily' where l.view_name = 'admin_daily_mv';

-- db/0900_triggers.sql: the triggers that mark the changed days. Not on an install already distributed by
-- Citus, which refuses statement triggers there (`pgtally distribute` drops them; its refresh re-aggregates
-- every day).
do $do$
begin
  if tally._is_distributed() then
    return;
  end if;
  -- Every change of the per-user rollup marks its UTC days, whoever makes it
  -- (the merge, rebuild, erasure, a dimension's backfill): the arguments name the
  -- transition tables. Citus allows no statement trigger on a distributed table:
  -- `pgtally distribute` drops these, and the refresh re-aggregates every day there.
  create trigger user_daily_values_after_insert_mark_days
    after insert on tally.user_daily_values
    referencing new table as new_rows
    for each statement
    execute function tally._trg_admin_daily_stale('new_rows');

  create trigger user_daily_values_after_update_mark_days
    after update on tally.user_daily_values
    referencing old table as old_rows new table as new_rows
    for each statement
    execute function tally._trg_admin_daily_stale('old_rows', 'new_rows');

  create trigger user_daily_values_after_delete_mark_days
    after delete on tally.user_daily_values
    referencing old table as old_rows
    for each statement
    execute function tally._trg_admin_daily_stale('old_rows');

  create trigger user_daily_values_after_truncate_mark_days
    after truncate on tally.user_daily_values
    for each statement
    execute function tally._trg_admin_daily_stale();

  -- A kind's unit decides which quantities add up: a new unit (a kind added, removed or given
  -- another unit) marks every day; a change of a display name or of nothing marks none.
  create trigger kinds_after_insert_mark_days
    after insert on tally.kinds
    referencing new table as new_rows
    for each statement
    execute function tally._trg_admin_daily_stale('new_rows');

  create trigger kinds_after_update_mark_days
    after update on tally.kinds
    referencing old table as old_rows new table as new_rows
    for each statement
    execute function tally._trg_admin_daily_stale('old_rows', 'new_rows');

  create trigger kinds_after_delete_mark_days
    after delete on tally.kinds
    referencing old table as old_rows
    for each statement
    execute function tally._trg_admin_daily_stale('old_rows');

  create trigger kinds_after_truncate_mark_days
    after truncate on tally.kinds
    for each statement
    execute function tally._trg_admin_daily_stale();

  -- A dimension's keys decide which pending deltas have a value (a merge of deltas that have
  -- none under any dimension writes no row, so marks no day): any change marks every day.
  create trigger dimensions_after_change_mark_days
    after insert or update or delete or truncate on tally.dimensions
    for each statement
    execute function tally._trg_admin_daily_stale();
end
$do$;

-- db/0890_admin_grants.sql, db/0950_seed.sql, db/0990_security.sql: the new objects' privileges and the first mark.
revoke all on tally.admin_daily, tally.admin_daily_stale from public;
alter table tally.admin_daily enable row level security;
alter table tally.admin_daily_stale enable row level security;
-- Stable, SECURITY INVOKER helper: readers may call it and see no more than row-level security lets them.
grant execute on function tally._admin_daily_rows(date[]) to tally_reader;
-- What changed since the view's last refresh is not known: every day is re-aggregated at the next refresh.
insert into tally.admin_daily_stale (day, version) values ('-infinity', pg_current_xact_id())
on conflict (day) do update set version = excluded.version;
