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
         -- Paying users now: a paid subscription in force at this moment ([t, t + 1 us)
         -- holds only t at timestamptz resolution), read live from the subscriptions.
         tally._paying_users(statement_timestamp(), statement_timestamp() + interval '1 microsecond'),
         round(o.events::numeric / nullif(o.users, 0), 2),
         round(o.cost / nullif(o.users, 0), 6),
         round(o.cost / nullif(o.events, 0), 6),
         o.first_at, o.last_at, tally._refreshed_at('admin_overview_mv')
    from tally.admin_overview_mv o
$$;

comment on function tally.admin_overview() is
  'Platform headline figures as of the last refresh (refreshed_at): users, events, succeeded and failed attempts, success rate %, duration, cost, billable cost, averages per user and per event; paying_users is live: users whose subscription at a monthly price > 0 is in force now. Requires tally_analyst.';
