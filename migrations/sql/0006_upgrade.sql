-- Revision 0006: the dashboard's funnel precomputed by the refresh (declared funnels per named timeframe and
-- plan, read in constant time by tally.admin_funnel_window), and the call-time funnel computed one statement
-- per step over all the users on the journey instead of one function call per user and step; a user's
-- daily totals read straight from the merged rows when nothing of theirs is pending, and the usage
-- history summed per bucket before zero-filling; the refresh with 64 MB of work_mem.
-- Changed functions are replaced in place (same signatures): their owners and grants stay.

-- db/0839_dashboard_funnels.sql
-- The funnels the refresh precomputes for the named timeframes (the dashboard's funnel), each an ordered list of kinds.
-- Written by tally.declare_funnel and tally.drop_funnel (the owner); read by tally.admin_funnel_mv at refresh time.
create table tally.dashboard_funnels (
  steps       text[]      primary key
                          constraint dashboard_funnel_has_1_to_20_steps check (cardinality(steps) between 1 and 20)
                          constraint dashboard_funnel_steps_are_kinds
                            check (array_position(steps, null) is null and not ('' = any (steps))),
  declared_at timestamptz not null default now()
);

comment on table tally.dashboard_funnels is
  'Funnels (ordered kinds) whose users per step the refresh computes for the named timeframes (24h, 7d, 30d, all) into tally.admin_funnel_mv, so a dashboard reads them in constant time through tally.admin_funnel_window. Any other funnel is computed at call time (by tally.admin_funnel_window over the same instants, and by tally.admin_funnel for any timeframe). Written by tally.declare_funnel and tally.drop_funnel (the owner); analysts may read it.';
comment on column tally.dashboard_funnels.steps is 'The funnel''s kinds in order (1 to 20 distinct, non-empty kinds).';

-- functions/0845_check_funnel_steps.sql
-- Refuses a funnel that is not 1 to 20 distinct, non-empty kinds (PT011).
-- Called by tally.admin_funnel, tally.admin_funnel_window and tally.declare_funnel.
create or replace function tally._check_funnel_steps(steps text[])
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if steps is null or cardinality(steps) not between 1 and 20 or array_position(steps, null) is not null
     or '' = any (steps) or (select count(distinct s) from unnest(steps) as s) <> cardinality(steps) then
    raise exception using errcode = 'PT011', column = 'steps',
      message = format('steps must be 1 to 20 distinct, non-empty kinds (got %s)', coalesce(steps::text, 'null'));
  end if;
end
$$;

comment on function tally._check_funnel_steps(text[]) is
  'Raises PT011 unless steps are 1 to 20 distinct, non-empty kinds (internal; the funnel functions call it).';

-- functions/0846_funnel_counts.sql
-- Users per step of a funnel inside [from_at, to_at) (of one plan, or all): the exact counts behind tally.admin_funnel.
-- Called by tally.admin_funnel and tally.admin_funnel_window (at call time) and tally.admin_funnel_mv (the declared funnels, at refresh).
create or replace function tally._funnel_counts(steps text[], from_at timestamptz, to_at timestamptz,
                                                only_plan text default null)
returns bigint[]
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  hi_day date := (to_at at time zone 'UTC')::date;
  users  text[];
  ats    timestamptz[];
  counts bigint[] := '{}'::bigint[];
  -- Once per call, not per step: a catalog lookup.
  distributed boolean := tally._is_distributed();
begin
  -- Step-1 candidates: users with a merged step-1 use on a day of the timeframe
  -- (an index range on (kind, day)), or a pending one in it. Only these users
  -- are looked at, so the cost follows the users active at step 1 in the
  -- timeframe, not the history or every user who ever reached a step.
  users := array(
    select d.user_id
      from tally.user_kind_days d
     where d.kind = steps[1]
       and d.day between (from_at at time zone 'UTC')::date and hi_day
       and d.last_at >= from_at and d.first_at < to_at
       and (only_plan is null or d.plan = only_plan)
    union
    select x.user_id
      from tally.pending_deltas x
     where x.is_use and x.kind = steps[1] and x.occurred_at >= from_at and x.occurred_at < to_at
       and (only_plan is null or coalesce(x.plan, '') = only_plan));
  ats := array_fill(from_at, array[cardinality(users)]);
  -- A journey inside the timeframe, greedily: step 1 at the user's earliest
  -- step-1 use in [from_at, to_at); step k at the earliest step-k use at or
  -- after step k - 1's time and before to_at. Taking the earliest time at each
  -- step finds an in-order journey whenever one exists, so a user counts at
  -- step k exactly when steps 1..k happened in order inside the timeframe
  -- (uses before from_at, such as an older first visit, play no part).
  -- Each step is one statement over all the users still on the journey.
  for k in 1 .. cardinality(steps) loop
    if cardinality(users) = 0 then
      counts := counts || 0::bigint;
      continue;
    end if;
    if distributed then
      -- Citus: one user at a time (a join of these arrays with the distributed
      -- step days would be planned as a join without the distribution column).
      select coalesce(array_agg(c.user_id), '{}'), coalesce(array_agg(f.t), '{}')
        into users, ats
        from unnest(users, ats) as c(user_id, at)
       cross join lateral (select tally._funnel_next(c.user_id, steps[k], c.at, to_at, only_plan) as t) f
       where f.t is not null;
    else
      select coalesce(array_agg(s.user_id), '{}'), coalesce(array_agg(s.t), '{}')
        into users, ats
        from (
          select x.user_id, min(x.t) as t
            from (
              -- Merged: per step day at or after the previous step's time, its
              -- first use when not before that time; otherwise that time falls
              -- inside the day's uses and the answer lies in [time, last_at]:
              -- read that stretch of the user's log (by the index on user and
              -- time). Where retention dropped it, last_at is the best known
              -- bound (a later, so stricter, step time). The earliest over the
              -- days (and plans in force) is the step's time.
              select c.user_id,
                     case when d.first_at >= c.at then d.first_at
                          else coalesce((select min(e.occurred_at)
                                           from tally.usage_events e
                                          where e.user_id = c.user_id
                                            and e.occurred_at >= c.at and e.occurred_at <= d.last_at
                                            and e.kind = steps[k] and e.status = 'succeeded'
                                            and e.corrects_event_id is null
                                            and (only_plan is null or coalesce(e.plan, '') = only_plan)),
                                        d.last_at)
                     end as t
                from unnest(users, ats) as c(user_id, at)
                join tally.user_kind_days d
                  on d.user_id = c.user_id and d.kind = steps[k]
                 and d.day >= (c.at at time zone 'UTC')::date and d.day <= hi_day
                 and d.last_at >= c.at
                 and (only_plan is null or d.plan = only_plan)
              union all
              -- Pending (not yet merged) uses: exact at commit.
              select c.user_id, p.occurred_at
                from unnest(users, ats) as c(user_id, at)
                join tally.pending_deltas p
                  on p.user_id = c.user_id and p.kind = steps[k] and p.is_use
                 and p.occurred_at >= c.at and p.occurred_at < to_at
                 and (only_plan is null or coalesce(p.plan, '') = only_plan)
            ) x
           group by x.user_id
          having min(x.t) < to_at
        ) s;
    end if;
    counts := counts || cardinality(users)::bigint;
  end loop;
  return counts;
end
$$;

comment on function tally._funnel_counts(text[], timestamptz, timestamptz, text) is
  'Users per step of a funnel inside [from_at, to_at): element k = the users with succeeded original events of steps 1..k inside the timeframe at non-decreasing times (with only_plan: recorded under that plan), from tally.user_kind_days plus pending deltas, exact at commit; no minimum group size applied (internal; tally.admin_funnel and tally.admin_funnel_mv call it).';

-- functions/0847_funnel_table.sql
-- A funnel's rows from its users per step: conversion from step 1 and from the previous step, drop-off, the minimum group size.
-- Called by tally.admin_funnel and tally.admin_funnel_window (the one place that shapes a funnel for analysts).
create or replace function tally._funnel_table(step_kinds text[], step_users bigint[], as_of timestamptz)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- PL/pgSQL, not SQL: the plan is cached for the session (a SQL function with SET is planned at every call).
  return query
  with counts as (
    select o.n::integer as n, o.kind, coalesce(step_users[o.n], 0) as users
      from unnest(step_kinds) with ordinality as o(kind, n)
  ), shown as (
    -- A step fewer users than the minimum group size reached counts as reached
    -- by none (so do the steps after it: they were reached by fewer): a narrow
    -- timeframe cannot follow one user through the steps.
    select c.n, c.kind, case when c.users >= m.k or m.k <= 1 then c.users else 0 end as users
      from counts c
     cross join (select tally._analytics_min_group_size() as k) m
  )
  select c.n, c.kind, c.users,
         round(100.0 * c.users / nullif(first_value(c.users) over w, 0), 2),
         round(100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         coalesce(lag(c.users) over w, c.users) - c.users,
         round(100 - 100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         as_of
    from shown c
  window w as (order by c.n)
   order by c.n;
end
$$;

comment on function tally._funnel_table(text[], bigint[], timestamptz) is
  'The rows of a funnel from its kinds and users per step (tally._funnel_counts): conversion from step 1 and from the previous step, drop-off; a step reached by fewer users than the minimum group size shows 0 users; refreshed_at = as_of (internal).';

-- db/0848_admin_funnel_mv.sql
-- Users per step of the declared funnels per named timeframe (24h, 7d, 30d, all) and plan: the dashboard's funnel.
-- Refreshed by tally.refresh_analytics; read by tally.admin_funnel_window.
create materialized view tally.admin_funnel_mv as
select w.time_window, f.steps, pl.plan,
       tally._funnel_counts(f.steps, w.from_at, w.to_at, nullif(pl.plan, '*')) as users,
       w.from_at as window_start, w.to_at as window_end
  from tally._analytics_windows(statement_timestamp()) w
 cross join tally.dashboard_funnels f
 cross join (select '*'::text as plan union select p.plan from tally.plans p) pl;

comment on materialized view tally.admin_funnel_mv is
  'Per declared funnel (tally.dashboard_funnels), named timeframe (24h, 7d, 30d ending at the refresh; all) and plan in force (''*'' = every plan, or a plan of tally.plans): users[k] = the users who did steps 1..k in order inside the timeframe (as tally.admin_funnel counts them, before the minimum group size), window_start/window_end. Read through tally.admin_funnel_window, which applies the minimum group size.';

create unique index admin_funnel_mv_key on tally.admin_funnel_mv (time_window, steps, plan);

-- functions/0849_declare_funnel.sql
-- Declares a funnel (ordered kinds) whose users per step the refresh precomputes for the named timeframes.
-- Called by the owner (product set-up code, `pgtally admin` users' DBA); takes effect at the next refresh.
create or replace function tally.declare_funnel(steps text[])
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  added boolean;
begin
  -- SECURITY DEFINER so that the check and the insert are one call; EXECUTE is the owner's alone
  -- (every funnel declared costs the refresh its journeys for four timeframes and every plan).
  perform tally._check_funnel_steps(steps);
  insert into tally.dashboard_funnels (steps) values (declare_funnel.steps) on conflict do nothing;
  get diagnostics added = row_count;
  return added;
end
$$;

comment on function tally.declare_funnel(text[]) is
  'Declares a funnel (1 to 20 distinct, non-empty kinds in order) for the refresh to precompute for the named timeframes (tally.admin_funnel_window reads it in constant time); true when it was new. Takes effect at the next tally.refresh_analytics. Owner only.';

-- functions/0855_drop_funnel.sql
-- Stops precomputing a declared funnel; tally.admin_funnel_window computes it at call time from then on.
-- Called by the owner; the precomputed rows go at the next refresh.
create or replace function tally.drop_funnel(steps text[])
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  removed boolean;
begin
  delete from tally.dashboard_funnels f where f.steps = drop_funnel.steps;
  get diagnostics removed = row_count;
  return removed;
end
$$;

comment on function tally.drop_funnel(text[]) is
  'Stops precomputing a declared funnel (true when it was declared); its precomputed rows go at the next tally.refresh_analytics, and tally.admin_funnel_window computes it at call time from then on. Owner only.';

-- functions/0857_admin_funnel_window.sql
-- The funnel of a named timeframe (24h, 7d, 30d, all) as of the refresh: what the admin dashboard shows.
-- Called by dashboards, admin.funnel(window=...), `pgtally admin` and the HTTP API; reads tally.admin_funnel_mv.
create or replace function tally.admin_funnel_window(steps text[], time_window text default '7d',
                                                     plan text default null)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w      text := tally._check_window(time_window);
  p      text := tally._analytics_plan(plan);
  counts bigint[];
  lo     timestamptz;
  hi     timestamptz;
begin
  -- SECURITY DEFINER on purpose, as tally.admin_funnel: the view holds every
  -- step however few users reached it; the minimum group size applies here.
  perform tally._check_funnel_steps(steps);
  -- A declared funnel: precomputed by the refresh, read in constant time.
  select m.users into counts
    from tally.admin_funnel_mv m
   where m.time_window = w and m.steps = admin_funnel_window.steps and m.plan = coalesce(p, '*');
  if found then
    return query select * from tally._funnel_table(steps, counts, tally._refreshed_at('admin_funnel_mv'));
    return;
  end if;
  -- Any other funnel (or plan): computed now over the same instants as the
  -- other panels of this timeframe (the last refresh's, or the install's before
  -- the first refresh: the views are filled when created).
  select o.window_start, o.window_end into lo, hi
    from tally.admin_overview_mv o
   where o.time_window = w and o.plan = '*';
  if not found then
    select a.from_at, a.to_at into lo, hi from tally._analytics_windows(statement_timestamp()) a where a.time_window = w;
  end if;
  return query select * from tally._funnel_table(steps, tally._funnel_counts(steps, lo, hi, p), statement_timestamp());
end
$$;

comment on function tally.admin_funnel_window(text[], text, text) is
  'Funnel over ordered kinds inside a named timeframe (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all: everything before it; default 7d), counted as tally.admin_funnel counts: a declared funnel (tally.declare_funnel; with plan: a plan of tally.plans) is read from the refresh in constant time, refreshed_at = the refresh; any other is computed at call time over the same instants, refreshed_at = now. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). Requires tally_analyst.';

-- functions/0620_daily_totals.sql
-- Daily totals of one user per local day and dimension value in a range of local days.
-- Called by application backends (trend charts) and the Python client's daily_totals().
create or replace function tally.daily_totals(user_id text, dimension text, from_day date, to_day date)
returns table (
  day         date,
  value       text,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  failures    bigint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  if from_day is null or to_day is null or to_day < from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day (got %s .. %s)', coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  end if;
  if not exists (select from tally.pending_deltas q where q.user_id = daily_totals.user_id) then
    -- Nothing pending for the user (the usual case between merges): the merged rows are
    -- already one per day and value, in key order; no sort, no aggregation.
    return query
    select t.day, t.value, t.events, t.quantity, t.duration_ms, t.cost, t.failures
      from tally.user_daily t
     where t.user_id = daily_totals.user_id and t.dimension = daily_totals.dimension
       and t.day between from_day and to_day
     order by t.day, t.value;
    return;
  end if;
  return query
  select x.day, x.value, sum(x.events)::bigint, sum(x.quantity), sum(x.duration_ms), sum(x.cost),
         sum(x.failures)::bigint
    from (
      select t.day, t.value, t.events, t.quantity, t.duration_ms, t.cost, t.failures
        from tally.user_daily t
       where t.user_id = daily_totals.user_id and t.dimension = daily_totals.dimension
         and t.day between from_day and to_day
      union all
      select p.day, p.value, p.events, p.quantity, p.duration_ms, p.cost, p.failures
        from (
          select (q.occurred_at at time zone coalesce(s.time_zone, 'UTC'))::date as day,
                 tally._dimension_value(keys, q.kind, q.attributes, q.plan) as value,
                 q.events, q.quantity, q.duration_ms, q.cost, q.failures
            from tally.pending_deltas q
            left join tally.user_settings s on s.user_id = q.user_id
           where q.user_id = daily_totals.user_id
        ) as p
       where p.day between from_day and to_day
    ) as x
   where x.value is not null
   group by x.day, x.value
   order by x.day, x.value;
end
$$;

comment on function tally.daily_totals(text, text, date, date) is
  'Totals of a user per local day (user''s time zone) and value of a declared dimension, for days from_day..to_day with activity; exact at commit.';

-- functions/0730_usage_history.sql
-- Usage history of one user: every day, week (Monday first) or month bucket of a range in local time, zero-filled, optionally stacked by a dimension.
-- Called by usage pages (charts) and the Python client's usage_history(); exact at commit (rollups + pending deltas).
create or replace function tally.usage_history(user_id text, range text default '30d', bucket text default 'day',
                                               dimension text default null, from_day date default null,
                                               to_day date default null, at timestamptz default now())
returns table (
  bucket_start date,
  bucket_end   date,
  value        text,
  events       bigint,
  quantity     numeric,
  duration_ms  numeric,
  cost         numeric,
  failures     bigint,
  unit         text
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
  r     record;
  step  interval;
begin
  if bucket is null or bucket not in ('day', 'week', 'month') then
    raise exception using errcode = 'PT011', column = 'bucket',
      message = format('bucket %L is not known: use day, week or month', bucket);
  end if;
  if dimension is not null then
    perform tally._dimension_keys(dimension);
  end if;
  r := tally._range_days(range, from_day, to_day, today);
  step := ('1 ' || bucket)::interval;
  -- Days outside the range are not counted, also in a first or last bucket that
  -- the range cuts; every bucket appears, and with a dimension every value that
  -- occurs in the range appears in every bucket.
  return query
  with days as (
    select date_trunc(bucket, d.day::timestamp)::date as b, d.value, d.events, d.quantity, d.duration_ms, d.cost, d.failures,
           case when dimension is null or dimension = 'kind' then coalesce(k.unit, d.value) end as unit
      from tally.daily_totals(usage_history.user_id, coalesce(dimension, 'kind'), r.first_day, r.last_day) d
      -- The unit of a kind as tally._kind_unit gives it, joined once: a call per day of that
      -- (pinned, so never inlined) function cost more than the rest of a 12-month history.
      left join tally.kinds k on k.kind = d.value
  ), units as (
    -- Quantities add within one unit only: summed over kinds of several units, the
    -- range shows no quantity at all (NULL) rather than a number in no unit.
    -- (Units grouped first: a hash over a few units instead of sorting every day for the distinct count.)
    select count(*) filter (where x.used) as n, min(x.unit) filter (where x.used) as unit
      from (select d.unit, bool_or(d.quantity <> 0) as used from days d where d.unit is not null group by d.unit) x
  ), per_bucket as (
    -- One row per bucket (and value, when stacked) before the zero-filling join.
    select d.b, case when dimension is not null then d.value end as value, sum(d.events) as events,
           sum(d.quantity) as quantity, sum(d.duration_ms) as duration_ms, sum(d.cost) as cost,
           sum(d.failures) as failures
      from days d
     group by 1, 2
  ), buckets as (
    select g::date as b
      from generate_series(date_trunc(bucket, r.first_day::timestamp), r.last_day::timestamp, step) g
  ), vals as (
    select distinct d.value from days d where dimension is not null
    union all
    select null::text where dimension is null or not exists (select from days)
  )
  select k.b, (k.b + step)::date, v.value, coalesce(d.events, 0)::bigint,
         case when dimension is not null or u.n <= 1 then coalesce(d.quantity, 0) end,
         coalesce(d.duration_ms, 0), coalesce(d.cost, 0), coalesce(d.failures, 0)::bigint,
         case when dimension = 'kind' then coalesce((select k.unit from tally.kinds k where k.kind = v.value), v.value)
              when dimension is null and u.n = 1 then u.unit end
    from buckets k
   cross join vals v
   cross join units u
    left join per_bucket d on d.b = k.b and d.value is not distinct from v.value
   order by k.b, v.value;
end
$$;

comment on function tally.usage_history(text, text, text, text, date, date, timestamptz) is
  'Usage of a user per bucket (day, week starting Monday, or month of local days) over a range (7d, 30d, 3m, 12m, any N[dwmy] ending today, or custom from_day..to_day), every bucket present with zeros; bucket_end is exclusive; stacked by a declared dimension when given (value NULL otherwise). Quantities add within one unit only: unstacked over kinds of several units the quantity is NULL; unit names the quantity''s unit (NULL when mixed, or stacked by a dimension other than kind). Exact at commit.';

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

-- functions/0866_admin_funnel.sql
-- Funnel over an ordered list of kinds: users reaching each step in order, conversion and drop-off per step, per timeframe
-- (and optionally one plan). Called by dashboards, admin.funnel() and `pgtally admin`; reads the merge-maintained tally.user_kind_days.
create or replace function tally.admin_funnel(steps text[], from_at timestamptz default null,
                                              to_at timestamptz default null, plan text default null)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  lo timestamptz := coalesce(from_at, '-infinity');
  hi timestamptz := coalesce(to_at, 'infinity');
  p  text := tally._analytics_plan(plan);
begin
  -- SECURITY DEFINER on purpose: the answer is aggregate, but it is computed from
  -- per-user rows (step days, pending deltas, the log) that analysts may not read.
  -- EXECUTE is granted to tally_analyst only (db/0890_admin_grants.sql).
  perform tally._check_funnel_steps(steps);
  if hi <= lo then
    raise exception using errcode = 'PT011', column = 'to_at',
      message = format('to_at (%s) must be after from_at (%s)', hi, lo);
  end if;
  -- The journeys of the users active at step 1 in the timeframe (tally._funnel_counts),
  -- shaped for analysts with the minimum group size (tally._funnel_table).
  return query select * from tally._funnel_table(steps, tally._funnel_counts(steps, lo, hi, p), statement_timestamp());
end
$$;

comment on function tally.admin_funnel(text[], timestamptz, timestamptz, text) is
  'Funnel over ordered kinds (e.g. {paywall.viewed,paywall.clicked,checkout.started,checkout.completed}) inside [from_at, to_at) (default: all time; exact instants): per step k, the users with succeeded original events of steps 1..k (with plan: recorded under that plan) inside the timeframe at non-decreasing times (uses before from_at do not count; a step done only before the previous one does not count); conversion from step 1 and from the previous step, drop-off. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). From the merge-maintained tally.user_kind_days plus pending deltas, so exact at commit (refreshed_at = now); the dashboard''s named timeframes of a declared funnel are precomputed (tally.admin_funnel_window). Requires tally_analyst.';

-- db/0890_admin_grants.sql, db/0950_seed.sql, db/0990_security.sql: the new objects' privileges and seed.
revoke all on tally.admin_funnel_mv, tally.dashboard_funnels from public;
grant select on tally.dashboard_funnels to tally_analyst;
alter table tally.dashboard_funnels enable row level security;
create policy "analysts read the declared funnels" on tally.dashboard_funnels
  for select to tally_analyst using (true);
revoke execute on function
  tally._funnel_counts(text[], timestamptz, timestamptz, text),
  tally._funnel_table(text[], bigint[], timestamptz),
  tally._check_funnel_steps(text[]),
  tally.declare_funnel(text[]),
  tally.drop_funnel(text[]),
  tally.admin_funnel_window(text[], text, text)
  from public;
grant execute on function tally.admin_funnel_window(text[], text, text) to tally_analyst;
-- Stable, SECURITY INVOKER helpers: readers may call them and see no more than row-level security lets them.
grant execute on function
  tally._funnel_counts(text[], timestamptz, timestamptz, text),
  tally._funnel_table(text[], bigint[], timestamptz),
  tally._check_funnel_steps(text[])
  to tally_reader;
grant execute on function tally.declare_funnel(text[]), tally.drop_funnel(text[]) to tally_owner;
insert into tally.dashboard_funnels (steps) values
  ('{paywall.viewed,paywall.clicked,checkout.started,checkout.completed}')
on conflict do nothing;
