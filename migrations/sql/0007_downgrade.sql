-- Revision 0007 undone: the platform's daily totals as the materialized view of revision 0006, refreshed in full by
-- every refresh (created here from the per-user rows).

-- (A distributed install has none: `pgtally distribute` dropped them.)
drop trigger if exists dimensions_after_change_mark_days on tally.dimensions;
drop trigger if exists kinds_after_truncate_mark_days on tally.kinds;
drop trigger if exists kinds_after_delete_mark_days on tally.kinds;
drop trigger if exists kinds_after_update_mark_days on tally.kinds;
drop trigger if exists kinds_after_insert_mark_days on tally.kinds;
drop trigger if exists user_daily_values_after_truncate_mark_days on tally.user_daily_values;
drop trigger if exists user_daily_values_after_delete_mark_days on tally.user_daily_values;
drop trigger if exists user_daily_values_after_update_mark_days on tally.user_daily_values;
drop trigger if exists user_daily_values_after_insert_mark_days on tally.user_daily_values;

-- db/0832_admin_daily_mv.sql
-- Platform totals per dimension, plan, UTC day and value: the trend series (events per day per kind, voice, model, ...).
-- Refreshed by tally.refresh_analytics; read by tally.admin_trend and tally.admin_week_over_week.
create materialized view tally.admin_daily_mv as
with rows as (
  select v.user_id, v.day, v.plan, v.dimension, v.value, v.kind, v.events, v.succeeded, v.failures, v.quantity,
         v.duration_ms, v.cost
    from tally.user_daily_values v
  union all
  -- Pending deltas (no window bounds: every whole day).
  select d.user_id, d.day, d.plan, d.dimension, d.value, d.kind, d.events, d.succeeded, d.failures, d.quantity,
         d.duration_ms, d.cost
    from tally._analytics_delta_values('-infinity', 'infinity') d
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
       g.events::bigint    as events,
       g.succeeded::bigint as succeeded,
       g.failures::bigint  as failures,
       -- Quantities of kinds of different units are never added: NULL then.
       case when g.lo is distinct from g.hi then null else g.quantity end as quantity,
       case when g.lo is distinct from g.hi then null when g.lo is not null then g.lo
            when g.lo_any = g.hi_any then g.lo_any end as unit,
       g.duration_ms,
       g.cost,
       g.users
  from groups g;

comment on materialized view tally.admin_daily_mv is
  'Platform totals per dimension, plan in force (''*'' = all plans, '''' = none), UTC day and value: events (net of reversals), succeeded attempts, failures, quantity and its unit (NULL both when the value''s quantities that day count in different units), duration, cost and users active with that value that day. From tally.user_daily_values plus pending deltas, as of the refresh. Read through tally.admin_trend and tally.admin_week_over_week.';

create unique index admin_daily_mv_key on tally.admin_daily_mv (dimension, plan, day, value);

-- functions/0826_analytics_views.sql
-- The analytics materialized views (the admin views and the users' peer distribution), in refresh order.
-- Called by tally.refresh_analytics and tally.analytics_freshness (the one list to extend with a new view).
create or replace function tally._analytics_views()
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select array['admin_totals_mv', 'admin_overview_mv', 'admin_daily_mv', 'admin_activity_mv', 'admin_leaderboards_mv',
               'admin_reliability_mv', 'admin_error_codes_mv', 'admin_cohorts_mv', 'admin_funnel_mv',
               'peer_distribution_mv']
$$;

comment on function tally._analytics_views() is
  'Names of the analytics materialized views in the tally schema (the admin views, then the peer distribution), in refresh order (internal).';

-- functions/0850_refresh_analytics.sql
-- Refreshes every admin materialized view CONCURRENTLY (readers are never blocked) and logs each one in tally.refresh_log.
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
    execute pg_catalog.format('refresh materialized view concurrently tally.%I', v);
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
  'Refreshes every admin materialized view concurrently (readers never wait) in one transaction and logs start, end, duration and rows per view in tally.refresh_log; returns one row per view. Never runs twice at once: a second caller gets one row with status ''skipped'' (view_name NULL) at once. Merge pending deltas first (`pgtally refresh` does): the views read the merged rollups.';

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
    select distinct d.value from tally.admin_daily_mv d
     where only_values is null and d.dimension = admin_trend.dimension and d.plan = p
       and d.day between first_day and last_day
       and (d.users >= min_users or min_users <= 1)
  )
  select g.day::date, vals.value, coalesce(d.events, 0), coalesce(d.failures, 0),
         -- NULL when the value's quantities that day count in different units (never added).
         case when d.value is null then 0 else d.quantity end, d.unit,
         coalesce(d.duration_ms, 0), coalesce(d.cost, 0), coalesce(d.users, 0),
         tally._refreshed_at('admin_daily_mv')
    from generate_series(first_day, last_day, interval '1 day') as g(day)
   cross join vals
    left join tally.admin_daily_mv d
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
  refreshed timestamptz := least(tally._refreshed_at('admin_activity_mv'), tally._refreshed_at('admin_daily_mv'));
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
      from tally.admin_daily_mv x
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
      from tally.admin_daily_mv x
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

revoke all on tally.admin_daily_mv from public;
update tally.refresh_log l set view_name = 'admin_daily_mv' where l.view_name = 'admin_daily';
drop function tally._trg_admin_daily_stale();
drop function tally._refresh_admin_daily();
drop function tally._admin_daily_rows(date[]);
drop table tally.admin_daily_stale;
drop table tally.admin_daily;
