-- Cohort retention table: users by first-active UTC month, share of each cohort active in each later month, optionally of one plan.
-- Called by dashboards, admin.cohorts() and `pgtally admin`.
create or replace function tally.admin_cohorts(from_month date default null, to_month date default null,
                                               plan text default null)
returns table (cohort_month date, active_month date, month_offset integer, users bigint, cohort_users bigint,
               retention_pct numeric, refreshed_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select c.cohort_month, c.active_month, c.month_offset, c.users, z.users,
         round(100.0 * c.users / nullif(z.users, 0), 1), tally._refreshed_at('admin_cohorts_mv')
    from tally.admin_cohorts_mv c
    join tally.admin_cohorts_mv z on z.plan = c.plan and z.cohort_month = c.cohort_month and z.month_offset = 0
   cross join (select tally._analytics_min_group_size() as min_users,
                      coalesce(tally._analytics_plan(admin_cohorts.plan), '*') as plan) m
   where c.plan = m.plan
     and c.cohort_month >= coalesce(date_trunc('month', from_month::timestamp),
                                    date_trunc('month', now() at time zone 'UTC') - interval '11 months')::date
     and c.cohort_month <= coalesce(date_trunc('month', to_month::timestamp),
                                    date_trunc('month', now() at time zone 'UTC'))::date
     -- Cells of fewer users than the minimum group size are left out (as a month
     -- nobody came back in); a cohort smaller than it has no row at all.
     and (c.users >= m.min_users or m.min_users <= 1)
   order by c.cohort_month, c.month_offset
$$;

comment on function tally.admin_cohorts(date, date, text) is
  'Cohort retention: for each first-active UTC month from from_month to to_month (default the last 12 months), how many of its users were active in each later month (month_offset 0 = the cohort month, across year boundaries) and the share in %. With plan: only events recorded under that plan (a cohort = users by their first active month on the plan). Cells of fewer users than the minimum group size are left out (so are cohorts smaller than it). As of refreshed_at. Requires tally_analyst.';
