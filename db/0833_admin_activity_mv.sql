-- Daily activity of the platform per plan: DAU, users active in 7/14/28/30 days, new users, attempts, billable cost (paying users are read live).
-- Refreshed by tally.refresh_analytics; read by tally.admin_active_users and tally.admin_week_over_week.
create materialized view tally.admin_activity_mv as
with ops as (
  select o.user_id, o.day, o.plan, o.succeeded, o.failed, o.billable_cost
    from tally.user_daily_ops o
  union all
  select d.user_id, d.day, d.plan, d.succeeded, d.failed, d.billable_cost
    from tally._analytics_delta_ops('-infinity', 'infinity') d
), user_days as (
  -- Per plan ('*' = every plan), user and UTC day.
  select case when grouping(o.plan) = 1 then '*' else o.plan end as plan, o.user_id, o.day,
         sum(o.succeeded) + sum(o.failed) > 0 as active,
         sum(o.succeeded) as succeeded, sum(o.failed) as failed, sum(o.billable_cost) as billable_cost
    from ops o
   group by grouping sets ((o.plan, o.user_id, o.day), (o.user_id, o.day))
), active_spans as (
  -- An active day a followed by the user's next active day b counts the user in
  -- the n-day windows ending on days [a, least(b, a + n)). These spans are
  -- disjoint per user, so a running sum of +1 at starts and -1 at ends counts
  -- distinct users per window in one pass, without a self-join.
  select u.plan, u.day, lead(u.day) over (partition by u.plan, u.user_id order by u.day) as next_day
    from user_days u
   where u.active
), changes (plan, day, a7, a14, a28, a30) as (
  select s.plan, s.day, 1, 1, 1, 1 from active_spans s
  union all
  select s.plan, least(coalesce(s.next_day, s.day + 7), s.day + 7), -1, 0, 0, 0 from active_spans s
  union all
  select s.plan, least(coalesce(s.next_day, s.day + 14), s.day + 14), 0, -1, 0, 0 from active_spans s
  union all
  select s.plan, least(coalesce(s.next_day, s.day + 28), s.day + 28), 0, 0, -1, 0 from active_spans s
  union all
  select s.plan, least(coalesce(s.next_day, s.day + 30), s.day + 30), 0, 0, 0, -1 from active_spans s
), days as (
  -- Zero-filled per plan from its first day up to today (UTC) at the refresh.
  select r.plan, g::date as day
    from (select u.plan, min(u.day) as lo,
                 greatest(max(u.day), (statement_timestamp() at time zone 'UTC')::date) as hi
            from user_days u
           group by u.plan) r,
         generate_series(r.lo, r.hi, interval '1 day') as g
), per_day as (
  select u.plan, u.day, count(*) filter (where u.active) as dau,
         sum(u.succeeded) as succeeded, sum(u.failed) as failed, sum(u.billable_cost) as billable_cost
    from user_days u
   group by u.plan, u.day
), firsts as (
  select f.plan, f.day, count(*) as new_users
    from (select u.plan, u.user_id, min(u.day) as day from user_days u where u.active group by u.plan, u.user_id) f
   group by f.plan, f.day
), deltas as (
  select c.plan, c.day, sum(c.a7) as a7, sum(c.a14) as a14, sum(c.a28) as a28, sum(c.a30) as a30
    from changes c
   group by c.plan, c.day
)
select d.plan,
       d.day,
       coalesce(p.dau, 0)::bigint                   as dau,
       (sum(coalesce(c.a7, 0)) over w)::bigint      as wau,
       (sum(coalesce(c.a14, 0)) over w)::bigint     as active_14d,
       (sum(coalesce(c.a28, 0)) over w)::bigint     as active_28d,
       (sum(coalesce(c.a30, 0)) over w)::bigint     as mau,
       coalesce(f.new_users, 0)::bigint             as new_users,
       coalesce(p.succeeded, 0)::bigint             as succeeded,
       coalesce(p.failed, 0)::bigint                as failed,
       coalesce(p.billable_cost, 0)                 as billable_cost
  from days d
  left join per_day p on p.plan = d.plan and p.day = d.day
  left join firsts f on f.plan = d.plan and f.day = d.day
  left join deltas c on c.plan = d.plan and c.day = d.day
window w as (partition by d.plan order by d.day);

comment on materialized view tally.admin_activity_mv is
  'Platform activity per plan in force (''*'' = all plans, '''' = none) and UTC day, zero-filled up to the refresh day: DAU, WAU, active_14d, active_28d and MAU (distinct users active in the 1, 7, 14, 28 and 30 days ending that day; active = a succeeded or failed event, of that plan for a plan), new users (first active day, on that plan for a plan), attempts and billable cost. From tally.user_daily_ops plus pending deltas. Read through tally.admin_active_users (which adds the paying users per UTC day from the subscriptions at call time) and tally.admin_week_over_week.';

create unique index admin_activity_mv_key on tally.admin_activity_mv (plan, day);
