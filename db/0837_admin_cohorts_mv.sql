-- Cohort retention per plan: users by first-active UTC month, counted again in each later month they are active.
-- Refreshed by tally.refresh_analytics; read by tally.admin_cohorts.
create materialized view tally.admin_cohorts_mv as
with ops as (
  select o.user_id, o.day, o.plan from tally.user_daily_ops o where o.succeeded > 0 or o.failed > 0
  union all
  select d.user_id, d.day, d.plan from tally._analytics_delta_ops('-infinity', 'infinity') d
   where d.succeeded > 0 or d.failed > 0
), months as (
  select case when grouping(o.plan) = 1 then '*' else o.plan end as plan, o.user_id,
         date_trunc('month', o.day::timestamp)::date as month
    from ops o
   group by grouping sets ((o.plan, o.user_id, date_trunc('month', o.day::timestamp)::date),
                           (o.user_id, date_trunc('month', o.day::timestamp)::date))
), cohorts as (
  select m.plan, m.user_id, min(m.month) as cohort_month
    from months m
   group by m.plan, m.user_id
)
select c.plan,
       c.cohort_month,
       m.month as active_month,
       ((extract(year from m.month) - extract(year from c.cohort_month)) * 12
        + extract(month from m.month) - extract(month from c.cohort_month))::integer as month_offset,
       count(*)::bigint as users
  from months m
  join cohorts c on c.plan = m.plan and c.user_id = m.user_id
 group by c.plan, c.cohort_month, m.month;

comment on materialized view tally.admin_cohorts_mv is
  'Cohort retention per plan in force (''*'' = all plans: a user''s usage on every plan; a plan: only the usage on it) and first-active UTC month (active = a succeeded or failed event): per later month, how many of the cohort were active; month_offset counts months across year boundaries. From tally.user_daily_ops plus pending deltas. Read through tally.admin_cohorts.';

create unique index admin_cohorts_mv_key on tally.admin_cohorts_mv (plan, cohort_month, active_month);
