-- Platform headline figures: users, events, attempts and success rate, cost, paying users, averages per user and event.
-- Called by dashboards, the Python client's admin.overview() and `pgtally admin`.
create or replace function tally.admin_overview()
returns table (users bigint, events bigint, succeeded bigint, failures bigint, success_rate numeric, duration_ms numeric,
               cost numeric, billable_cost numeric, paying_users bigint, avg_events_per_user numeric,
               avg_cost_per_user numeric, avg_cost_per_event numeric, first_at timestamptz, last_at timestamptz,
               refreshed_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select o.users, o.events, o.succeeded, o.failures, o.success_rate, o.duration_ms, o.cost, o.billable_cost,
         o.paying_users,
         round(o.events::numeric / nullif(o.users, 0), 2),
         round(o.cost / nullif(o.users, 0), 6),
         round(o.cost / nullif(o.events, 0), 6),
         o.first_at, o.last_at, tally._refreshed_at('admin_overview_mv')
    from tally.admin_overview_mv o
$$;

comment on function tally.admin_overview() is
  'Platform headline figures as of the last refresh (refreshed_at): users, events, succeeded and failed attempts, success rate %, duration, cost, billable cost, paying users (net billable cost > 0), averages per user and per event. Requires tally_analyst.';
