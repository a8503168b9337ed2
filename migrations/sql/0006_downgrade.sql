-- Revision 0006 undone: the funnel as of revision 0005 (computed per user at call time, nothing precomputed),
-- the daily totals and usage history as of revision 0005.

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
    select count(distinct d.unit) filter (where d.quantity <> 0) as n,
           min(d.unit) filter (where d.quantity <> 0) as unit
      from days d
  ), buckets as (
    select g::date as b
      from generate_series(date_trunc(bucket, r.first_day::timestamp), r.last_day::timestamp, step) g
  ), vals as (
    select distinct d.value from days d where dimension is not null
    union all
    select null::text where dimension is null or not exists (select from days)
  )
  select k.b, (k.b + step)::date, v.value, coalesce(sum(d.events), 0)::bigint,
         case when dimension is not null or min(u.n) <= 1 then coalesce(sum(d.quantity), 0) end,
         coalesce(sum(d.duration_ms), 0), coalesce(sum(d.cost), 0), coalesce(sum(d.failures), 0)::bigint,
         case when dimension = 'kind' then coalesce((select k.unit from tally.kinds k where k.kind = v.value), v.value)
              when dimension is null and min(u.n) = 1 then min(u.unit) end
    from buckets k
   cross join vals v
   cross join units u
    left join days d on d.b = k.b and (dimension is null or d.value = v.value)
   group by k.b, v.value
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
               'admin_reliability_mv', 'admin_error_codes_mv', 'admin_cohorts_mv', 'peer_distribution_mv']
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
  min_users integer := tally._analytics_min_group_size();
  p  text := tally._analytics_plan(plan);
  start_users text[];
begin
  -- SECURITY DEFINER on purpose: the answer is aggregate, but it is computed from
  -- per-user rows (step days, pending deltas, the log) that analysts may not read.
  -- EXECUTE is granted to tally_analyst only (db/0890_admin_grants.sql).
  if steps is null or cardinality(steps) not between 1 and 20 or array_position(steps, null) is not null
     or '' = any (steps) or (select count(distinct s) from unnest(steps) as s) <> cardinality(steps) then
    raise exception using errcode = 'PT011', column = 'steps',
      message = format('steps must be 1 to 20 distinct, non-empty kinds (got %s)', coalesce(steps::text, 'null'));
  elsif hi <= lo then
    raise exception using errcode = 'PT011', column = 'to_at',
      message = format('to_at (%s) must be after from_at (%s)', hi, lo);
  end if;
  -- Step-1 candidates: users with a merged step-1 use on a day of the timeframe
  -- (an index range on (kind, day)), or a pending one in it. Only these users
  -- are looked at, so the cost follows the users active at step 1 in the
  -- timeframe, not the history or every user who ever reached a step. Read
  -- first, by themselves: Citus refuses a recursive query that names a
  -- distributed table without a filter on user_id (the walk below reads the
  -- tables only through tally._funnel_next, one user at a time).
  start_users := array(
    select d.user_id
      from tally.user_kind_days d
     where d.kind = steps[1]
       and d.day between (lo at time zone 'UTC')::date and (hi at time zone 'UTC')::date
       and d.last_at >= lo and d.first_at < hi
       and (p is null or d.plan = p)
    union
    select x.user_id
      from tally.pending_deltas x
     where x.is_use and x.kind = steps[1] and x.occurred_at >= lo and x.occurred_at < hi
       and (p is null or coalesce(x.plan, '') = p));
  return query
  with recursive ordered as (
    select o.kind, o.n::integer as n from unnest(steps) with ordinality as o(kind, n)
  ), starts as (
    select s.user_id from unnest(start_users) as s(user_id)
  ), reached (n, user_id, at) as (
    -- A journey inside the timeframe, greedily: step 1 at the user's earliest
    -- step-1 use in [from_at, to_at); step k at the earliest step-k use at or
    -- after step k - 1's time and before to_at. Taking the earliest time at each
    -- step finds an in-order journey whenever one exists, so a user counts at
    -- step k exactly when steps 1..k happened in order inside the timeframe
    -- (uses before from_at, such as an older first visit, play no part).
    select 1, s.user_id, f.t
      from starts s
     cross join lateral (select tally._funnel_next(s.user_id, steps[1], lo, hi, p) as t) f
     where f.t is not null
    union all
    select r.n + 1, r.user_id, f.t
      from reached r
      join ordered o on o.n = r.n + 1
     cross join lateral (select tally._funnel_next(r.user_id, o.kind, r.at, hi, p) as t) f
     where f.t is not null
  ), counts as (
    select o.n, o.kind, count(r.user_id) as users
      from ordered o
      left join reached r on r.n = o.n
     group by o.n, o.kind
  ), shown as (
    -- A step fewer users than the minimum group size reached counts as reached
    -- by none (so do the steps after it): a narrow timeframe cannot follow one
    -- user through the steps.
    select c.n, c.kind, case when c.users >= min_users or min_users <= 1 then c.users else 0 end as users
      from counts c
  )
  select c.n, c.kind, c.users,
         round(100.0 * c.users / nullif(first_value(c.users) over w, 0), 2),
         round(100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         coalesce(lag(c.users) over w, c.users) - c.users,
         round(100 - 100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         statement_timestamp()
    from shown c
  window w as (order by c.n)
   order by c.n;
end
$$;

comment on function tally.admin_funnel(text[], timestamptz, timestamptz, text) is
  'Funnel over ordered kinds (e.g. {paywall.viewed,paywall.clicked,checkout.started,checkout.completed}) inside [from_at, to_at) (default: all time; exact instants): per step k, the users with succeeded original events of steps 1..k (with plan: recorded under that plan) inside the timeframe at non-decreasing times (uses before from_at do not count; a step done only before the previous one does not count); conversion from step 1 and from the previous step, drop-off. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). From the merge-maintained tally.user_kind_days plus pending deltas, so exact at commit (refreshed_at = now). Requires tally_analyst.';

drop function tally.admin_funnel_window(text[], text, text);
drop function tally.drop_funnel(text[]);
drop function tally.declare_funnel(text[]);
drop materialized view tally.admin_funnel_mv;
drop function tally._funnel_table(text[], bigint[], timestamptz);
drop function tally._funnel_counts(text[], timestamptz, timestamptz, text);
drop function tally._check_funnel_steps(text[]);
drop table tally.dashboard_funnels;
delete from tally.refresh_log l where l.view_name = 'admin_funnel_mv';
