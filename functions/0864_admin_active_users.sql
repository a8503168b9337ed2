-- DAU, WAU, MAU, new and paying users, attempts and success rate per day (paying users live, from the subscriptions).
-- Called by dashboards, admin.active_users() and `pgtally admin`.
create or replace function tally.admin_active_users(from_day date default null, to_day date default null)
returns table (day date, dau bigint, wau bigint, mau bigint, new_users bigint, paying_users bigint,
               paying_users_7d bigint, paying_users_30d bigint, succeeded bigint, failed bigint, success_rate numeric,
               billable_cost numeric, refreshed_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  with shown as (
    select a.day, a.dau, a.wau, a.mau, a.new_users, a.succeeded, a.failed, a.billable_cost
      from tally.admin_activity_mv a
     where a.day between coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29)
                     and coalesce(to_day, (now() at time zone 'UTC')::date)
  ), paying as (
    -- Paying users per UTC day, 7 and 30 days: from the subscriptions at call
    -- time (exact, no refresh), over the days the view has in the range.
    select p.day, p.paying_users, p.paying_users_7d, p.paying_users_30d
      from (select min(x.day) as lo, max(x.day) as hi from shown x) r
     cross join lateral tally._paying_users_by_day(r.lo, r.hi) p
     where r.lo is not null
  )
  select a.day, a.dau, a.wau, a.mau, a.new_users, coalesce(p.paying_users, 0), coalesce(p.paying_users_7d, 0),
         coalesce(p.paying_users_30d, 0), a.succeeded, a.failed,
         round(100.0 * a.succeeded / nullif(a.succeeded + a.failed, 0), 2), a.billable_cost,
         tally._refreshed_at('admin_activity_mv')
    from shown a
    left join paying p on p.day = a.day
   order by a.day
$$;

comment on function tally.admin_active_users(date, date) is
  'Per day (default: the 30 days ending today, UTC): DAU, WAU, MAU (distinct users with a succeeded or failed event in the 1, 7, 30 days ending that day), new users, attempts, success rate %, billable cost as of refreshed_at; paying users (live, per UTC day): users with a subscription at monthly_price > 0 in force at some moment of that day and of the 7 and 30 days ending it. Requires tally_analyst.';
