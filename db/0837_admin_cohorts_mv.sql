-- Cohort retention: users by first-active month, counted again in each later month they are active.
-- Refreshed by tally.refresh_analytics; read by tally.admin_cohorts.
create materialized view tally.admin_cohorts_mv as
with months as (
  select o.user_id, date_trunc('month', o.day::timestamp)::date as month
    from tally.user_daily_ops o
   where o.succeeded > 0 or o.failed > 0
   group by 1, 2
), cohorts as (
  select m.user_id, min(m.month) as cohort_month
    from months m
   group by m.user_id
)
select c.cohort_month,
       m.month as active_month,
       ((extract(year from m.month) - extract(year from c.cohort_month)) * 12
        + extract(month from m.month) - extract(month from c.cohort_month))::integer as month_offset,
       count(*)::bigint as users
  from months m
  join cohorts c on c.user_id = m.user_id
 group by c.cohort_month, m.month;

comment on materialized view tally.admin_cohorts_mv is
  'Cohort retention: per first-active month (the user''s local days; active = a succeeded or failed event) and later month, how many of the cohort were active; month_offset counts months across year boundaries. From tally.user_daily_ops. Read through tally.admin_cohorts.';

create unique index admin_cohorts_mv_key on tally.admin_cohorts_mv (cohort_month, active_month);
