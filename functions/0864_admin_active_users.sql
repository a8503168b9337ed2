-- DAU, WAU, MAU, new and paying users, attempts and success rate per UTC day, optionally of one plan (paying users live, from the subscriptions).
-- Called by dashboards, admin.active_users() and `pgtally admin`.
create or replace function tally.admin_active_users(from_day date default null, to_day date default null,
                                                    plan text default null)
returns table (day date, dau bigint, wau bigint, mau bigint, new_users bigint, paying_users bigint,
               paying_users_7d bigint, paying_users_30d bigint, succeeded bigint, failed bigint, success_rate numeric,
               billable_cost numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  return query
  with shown as (
    -- The whole platform counts everyone. One plan is a group: a day on which fewer
    -- users than the minimum group size used it reads as a day without use, and each
    -- count of users below the minimum reads 0.
    select a.day,
           case when d.shown then a.dau else 0 end as dau,
           case when p is null or a.wau >= min_users or min_users <= 1 then a.wau else 0 end as wau,
           case when p is null or a.mau >= min_users or min_users <= 1 then a.mau else 0 end as mau,
           case when d.shown and (p is null or a.new_users >= min_users or min_users <= 1) then a.new_users else 0 end
             as new_users,
           case when d.shown then a.succeeded else 0 end as succeeded,
           case when d.shown then a.failed else 0 end as failed,
           case when d.shown then a.billable_cost else 0 end as billable_cost
      from tally.admin_activity_mv a
     cross join lateral (select p is null or a.dau >= min_users or min_users <= 1 as shown) d
     where a.plan = coalesce(p, '*')
       and a.day between coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29)
                     and coalesce(to_day, (now() at time zone 'UTC')::date)
  ), paying as (
    -- Paying users per UTC day, 7 and 30 days: from the subscriptions at call
    -- time (exact, no refresh), over the days the view has in the range.
    select x.day, x.paying_users, x.paying_users_7d, x.paying_users_30d
      from (select min(s.day) as lo, max(s.day) as hi from shown s) r
     cross join lateral tally._paying_users_by_day(r.lo, r.hi, p) x
     where r.lo is not null
  )
  select a.day, a.dau, a.wau, a.mau, a.new_users,
         case when p is null or x.paying_users >= min_users or min_users <= 1 then coalesce(x.paying_users, 0) else 0 end,
         case when p is null or x.paying_users_7d >= min_users or min_users <= 1 then coalesce(x.paying_users_7d, 0) else 0 end,
         case when p is null or x.paying_users_30d >= min_users or min_users <= 1 then coalesce(x.paying_users_30d, 0) else 0 end,
         a.succeeded, a.failed, round(100.0 * a.succeeded / nullif(a.succeeded + a.failed, 0), 2), a.billable_cost,
         tally._refreshed_at('admin_activity_mv')
    from shown a
    left join paying x on x.day = a.day
   order by a.day;
end
$$;

comment on function tally.admin_active_users(date, date, text) is
  'Per UTC day (from_day through to_day, both included; default the 30 days ending today): DAU, WAU, MAU (distinct users with a succeeded or failed event in the 1, 7, 30 days ending that day), new users, attempts, success rate %, billable cost as of refreshed_at; paying users (live, per UTC day): users with a subscription at monthly_price > 0 in force at some moment of that day and of the 7 and 30 days ending it. With plan: only events recorded under that plan (new users: first active on it) and its subscriptions; a day with fewer users of the plan than the minimum group size reads as a day without use, and each count of users below the minimum reads 0. Requires tally_analyst.';
