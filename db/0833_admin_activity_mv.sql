-- Daily activity of the platform: DAU, WAU, MAU, new users, attempts, billable cost (paying users are read live).
-- Refreshed by tally.refresh_analytics; read by tally.admin_active_users and tally.admin_week_over_week.
create materialized view tally.admin_activity_mv as
with user_days as (
  select o.user_id, o.day,
         sum(o.succeeded) + sum(o.failed) > 0 as active,
         sum(o.succeeded) as succeeded, sum(o.failed) as failed, sum(o.billable_cost) as billable_cost
    from tally.user_daily_ops o
   group by o.user_id, o.day
), active_spans as (
  -- An active day a followed by the user's next active day b counts the user in
  -- the n-day windows ending on days [a, least(b, a + n)). These spans are
  -- disjoint per user, so a running sum of +1 at starts and -1 at ends counts
  -- distinct users per window in one pass, without a self-join.
  select u.day, lead(u.day) over (partition by u.user_id order by u.day) as next_day
    from user_days u
   where u.active
), changes (day, wau, mau) as (
  select s.day, 1, 1 from active_spans s
  union all
  select least(coalesce(s.next_day, s.day + 7), s.day + 7), -1, 0 from active_spans s
  union all
  select least(coalesce(s.next_day, s.day + 30), s.day + 30), 0, -1 from active_spans s
), days as (
  select g::date as day
    from (select min(u.day) as lo, greatest(max(u.day), (now() at time zone 'UTC')::date) as hi from user_days u) r,
         generate_series(r.lo, r.hi, interval '1 day') as g
), per_day as (
  select u.day, count(*) filter (where u.active) as dau,
         sum(u.succeeded) as succeeded, sum(u.failed) as failed, sum(u.billable_cost) as billable_cost
    from user_days u
   group by u.day
), firsts as (
  select f.day, count(*) as new_users
    from (select u.user_id, min(u.day) as day from user_days u where u.active group by u.user_id) f
   group by f.day
), deltas as (
  select c.day, sum(c.wau) as wau, sum(c.mau) as mau
    from changes c
   group by c.day
)
select d.day,
       coalesce(p.dau, 0)::bigint                                    as dau,
       (sum(coalesce(c.wau, 0)) over w)::bigint                      as wau,
       (sum(coalesce(c.mau, 0)) over w)::bigint                      as mau,
       coalesce(f.new_users, 0)::bigint                              as new_users,
       coalesce(p.succeeded, 0)::bigint                              as succeeded,
       coalesce(p.failed, 0)::bigint                                 as failed,
       coalesce(p.billable_cost, 0)                                  as billable_cost
  from days d
  left join per_day p on p.day = d.day
  left join firsts f on f.day = d.day
  left join deltas c on c.day = d.day
window w as (order by d.day);

comment on materialized view tally.admin_activity_mv is
  'Platform activity per day (each user''s local day), zero-filled up to today: DAU, WAU and MAU (distinct users active in the 1, 7 and 30 days ending that day; active = a succeeded or failed event), new users (first active day), attempts and billable cost. From tally.user_daily_ops. Read through tally.admin_active_users, which adds the paying users per UTC day from the subscriptions at call time.';

create unique index admin_activity_mv_key on tally.admin_activity_mv (day);
