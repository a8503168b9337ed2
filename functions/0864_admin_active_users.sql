-- DAU, WAU, MAU, new and paying users, attempts and success rate per day.
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
  select a.day, a.dau, a.wau, a.mau, a.new_users, a.paying_users, a.paying_users_7d, a.paying_users_30d, a.succeeded,
         a.failed, round(100.0 * a.succeeded / nullif(a.succeeded + a.failed, 0), 2), a.billable_cost,
         tally._refreshed_at('admin_activity_mv')
    from tally.admin_activity_mv a
   where a.day between coalesce(from_day, coalesce(to_day, (now() at time zone 'UTC')::date) - 29)
                   and coalesce(to_day, (now() at time zone 'UTC')::date)
   order by a.day
$$;

comment on function tally.admin_active_users(date, date) is
  'Per day (default: the 30 days ending today, UTC): DAU, WAU, MAU (distinct users with a succeeded or failed event in the 1, 7, 30 days ending that day), new users, paying users that day and in 7 and 30 days (net billable cost > 0), attempts, success rate %, billable cost. As of refreshed_at. Requires tally_analyst.';
