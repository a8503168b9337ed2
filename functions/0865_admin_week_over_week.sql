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
