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
