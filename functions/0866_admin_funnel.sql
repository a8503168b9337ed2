-- Funnel over an ordered list of kinds: users reaching each step in order, conversion and drop-off per step, per timeframe.
-- Called by dashboards, admin.funnel() and `pgtally admin`; reads the trigger-maintained tally.user_first_reached, never the raw log.
create or replace function tally.admin_funnel(steps text[], from_at timestamptz default null,
                                              to_at timestamptz default null)
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
begin
  -- SECURITY DEFINER on purpose: the answer is aggregate, but it is computed from
  -- per-user rows (first-reached times, pending deltas) that analysts may not read.
  -- EXECUTE is granted to tally_analyst only (db/0890_admin_grants.sql).
  if steps is null or cardinality(steps) not between 1 and 20 or array_position(steps, null) is not null
     or '' = any (steps) or (select count(distinct s) from unnest(steps) as s) <> cardinality(steps) then
    raise exception using errcode = 'PT011', column = 'steps',
      message = format('steps must be 1 to 20 distinct, non-empty kinds (got %s)', coalesce(steps::text, 'null'));
  elsif hi <= lo then
    raise exception using errcode = 'PT011', column = 'to_at',
      message = format('to_at (%s) must be after from_at (%s)', hi, lo);
  end if;
  return query
  with recursive ordered as (
    select o.kind, o.n::integer as n from unnest(steps) with ordinality as o(kind, n)
  ), starts as (
    -- Step-1 candidates: users whose merged first time falls in the timeframe
    -- (an index range on (kind, first_at)), or who have a pending first use.
    -- Only these users are looked at, so the cost follows the users entering
    -- the funnel in the timeframe, not every user who ever reached a step.
    select r.user_id
      from tally.user_first_reached r
     where r.kind = steps[1] and r.first_at >= lo and r.first_at < hi
    union
    select p.user_id
      from tally.pending_deltas p
     where p.is_use and p.kind = steps[1] and p.occurred_at < hi
  ), reached (n, user_id, at) as (
    -- A user's first time at a kind: merged first time plus pending deltas, both
    -- before to_at (exact at commit, like the user reads), by primary key.
    -- Step 1: candidates whose first time is in the timeframe; step k: reached
    -- step k - 1 and first reached step k at or after it (skipping or reversing
    -- a step stops the user).
    select 1, s.user_id, f.t
      from starts s
     cross join lateral (
       select least((select x.first_at from tally.user_first_reached x
                      where x.user_id = s.user_id and x.kind = steps[1] and x.first_at < hi),
                    (select min(p.occurred_at) from tally.pending_deltas p
                      where p.user_id = s.user_id and p.kind = steps[1] and p.is_use and p.occurred_at < hi)) as t
     ) f
     where f.t >= lo
    union all
    select r.n + 1, r.user_id, f.t
      from reached r
      join ordered o on o.n = r.n + 1
     cross join lateral (
       select least((select x.first_at from tally.user_first_reached x
                      where x.user_id = r.user_id and x.kind = o.kind and x.first_at < hi),
                    (select min(p.occurred_at) from tally.pending_deltas p
                      where p.user_id = r.user_id and p.kind = o.kind and p.is_use and p.occurred_at < hi)) as t
     ) f
     where f.t >= r.at
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

comment on function tally.admin_funnel(text[], timestamptz, timestamptz) is
  'Funnel over ordered kinds (e.g. {paywall.viewed,paywall.clicked,checkout.started,checkout.completed}): users whose first step 1 falls in [from_at, to_at), and of them those who first reached each next step at or after the previous one and before to_at; conversion from step 1 and from the previous step, drop-off. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). From the trigger-maintained first-reached table plus pending deltas, so exact at commit (refreshed_at = now). Requires tally_analyst.';
