-- Week-over-week cards: the 7 days ending as_of against the 7 before, with absolute and % deltas and a trend flag.
-- Called by dashboards, admin.week_over_week() and `pgtally admin`.
create or replace function tally.admin_week_over_week(as_of date default null, dimension text default 'kind')
returns table (metric text, value text, this_week numeric, last_week numeric, delta numeric, delta_pct numeric,
               trend text, week_start date, week_end date, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d date := coalesce(as_of, (now() at time zone 'UTC')::date - 1);
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  return query
  with act as (
    select coalesce(sum(a.succeeded) filter (where a.day > d - 7), 0) as s1,
           coalesce(sum(a.succeeded) filter (where a.day <= d - 7), 0) as s0,
           coalesce(sum(a.failed) filter (where a.day > d - 7), 0) as f1,
           coalesce(sum(a.failed) filter (where a.day <= d - 7), 0) as f0,
           coalesce(sum(a.new_users) filter (where a.day > d - 7), 0) as n1,
           coalesce(sum(a.new_users) filter (where a.day <= d - 7), 0) as n0,
           coalesce(sum(a.billable_cost) filter (where a.day > d - 7), 0) as b1,
           coalesce(sum(a.billable_cost) filter (where a.day <= d - 7), 0) as b0,
           coalesce(max(a.wau) filter (where a.day = d), 0) as w1,
           coalesce(max(a.wau) filter (where a.day = d - 7), 0) as w0,
           -- Paying users of each week (UTC days): a paid subscription in force at
           -- some moment of it, read live from the subscriptions.
           tally._paying_users((d - 6)::timestamp at time zone 'UTC', (d + 1)::timestamp at time zone 'UTC') as p1,
           tally._paying_users((d - 13)::timestamp at time zone 'UTC', (d - 6)::timestamp at time zone 'UTC') as p0
      from tally.admin_activity_mv a
     where a.day between d - 13 and d
  ), per_value as (
    select x.value,
           coalesce(sum(x.events) filter (where x.day > d - 7), 0) as e1,
           coalesce(sum(x.events) filter (where x.day <= d - 7), 0) as e0,
           coalesce(sum(x.failures) filter (where x.day > d - 7), 0) as f1,
           coalesce(sum(x.failures) filter (where x.day <= d - 7), 0) as f0,
           coalesce(sum(x.quantity) filter (where x.day > d - 7), 0) as q1,
           coalesce(sum(x.quantity) filter (where x.day <= d - 7), 0) as q0,
           coalesce(sum(x.duration_ms) filter (where x.day > d - 7), 0) as m1,
           coalesce(sum(x.duration_ms) filter (where x.day <= d - 7), 0) as m0,
           coalesce(sum(x.cost) filter (where x.day > d - 7), 0) as c1,
           coalesce(sum(x.cost) filter (where x.day <= d - 7), 0) as c0
      from tally.admin_daily_mv x
     where x.dimension = admin_week_over_week.dimension and x.day between d - 13 and d
       -- The days admin_trend shows: a day with fewer users of the value than the
       -- minimum group size counts as none (the platform cards count everything).
       and (x.users >= min_users or min_users <= 1)
     group by x.value
  ), platform as (
    select coalesce(sum(x.events) filter (where x.day > d - 7), 0) as e1,
           coalesce(sum(x.events) filter (where x.day <= d - 7), 0) as e0,
           coalesce(sum(x.cost) filter (where x.day > d - 7), 0) as c1,
           coalesce(sum(x.cost) filter (where x.day <= d - 7), 0) as c0
      from tally.admin_daily_mv x
     where x.dimension = 'kind' and x.day between d - 13 and d
  ), cards (ord, metric, value, tw, lw) as (
    select 1, 'events', '*', p.e1::numeric, p.e0::numeric from platform p
    union all select 2, 'active_users', '*', a.w1, a.w0 from act a
    union all select 3, 'new_users', '*', a.n1, a.n0 from act a
    union all select 4, 'paying_users', '*', a.p1, a.p0 from act a
    union all select 5, 'success_rate', '*', round(100.0 * a.s1 / nullif(a.s1 + a.f1, 0), 2),
                     round(100.0 * a.s0 / nullif(a.s0 + a.f0, 0), 2) from act a
    union all select 6, 'succeeded', '*', a.s1, a.s0 from act a
    union all select 7, 'failures', '*', a.f1, a.f0 from act a
    union all select 8, 'cost', '*', p.c1, p.c0 from platform p
    union all select 9, 'billable_cost', '*', a.b1, a.b0 from act a
    union all select 10, 'events', v.value, v.e1, v.e0 from per_value v
    union all select 11, 'failures', v.value, v.f1, v.f0 from per_value v
    union all select 12, 'quantity', v.value, v.q1, v.q0 from per_value v
    union all select 13, 'duration_ms', v.value, v.m1, v.m0 from per_value v
    union all select 14, 'cost', v.value, v.c1, v.c0 from per_value v
  )
  select c.metric, c.value, c.tw, c.lw, c.tw - c.lw,
         round(100 * (c.tw - c.lw) / nullif(abs(c.lw), 0), 1),
         case when c.tw is null or c.lw is null then null
              when c.lw = 0 then case when c.tw > 0 then 'up' when c.tw < 0 then 'down' else 'stable' end
              when abs(c.tw - c.lw) <= 0.05 * abs(c.lw) then 'stable'
              when c.tw > c.lw then 'up'
              else 'down' end,
         d - 6, d,
         least(tally._refreshed_at('admin_activity_mv'), tally._refreshed_at('admin_daily_mv'))
    from cards c
   order by c.ord, c.value;
end
$$;

comment on function tally.admin_week_over_week(date, text) is
  'Week-over-week cards for the 7 days ending as_of (default yesterday, UTC) against the 7 before: platform events, active users (WAU), new users, paying users (live: users with a subscription at monthly_price > 0 in force at some moment of the week, UTC days), success rate %, attempts, cost, billable cost (value ''*''), then events, failures, quantity, duration_ms and cost per value of a declared dimension (default kind), summed over the days on which at least the minimum group size of users used the value (as admin_trend shows them). delta = this - last, delta_pct relative to last (NULL when last is 0), trend up/down/stable (stable within 5%). Requires tally_analyst.';
