-- Platform totals per value of one declared dimension (kind, model, provider, plan, ...), averages and cost shares.
-- Called by dashboards, admin.totals() / admin.cost_breakdown() and `pgtally admin`.
create or replace function tally.admin_totals(dimension text default 'kind')
returns table (value text, events bigint, failures bigint, quantity numeric, duration_ms numeric, cost numeric, users bigint,
               avg_quantity_per_event numeric, avg_duration_ms numeric, avg_cost_per_event numeric,
               avg_events_per_user numeric, avg_quantity_per_user numeric, avg_cost_per_user numeric,
               cost_share_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  return query
  select t.value, t.events, t.failures, t.quantity, t.duration_ms, t.cost, t.users,
         round(t.quantity / nullif(t.events, 0), 2),
         round(t.duration_ms / nullif(t.timed_events, 0)),
         round(t.cost / nullif(t.events, 0), 6),
         round(t.events::numeric / nullif(t.users, 0), 2),
         round(t.quantity / nullif(t.users, 0), 2),
         round(t.cost / nullif(t.users, 0), 6),
         round(100 * t.cost / nullif(sum(t.cost) over (), 0), 2),
         tally._refreshed_at('admin_totals_mv')
    from tally.admin_totals_mv t
   where t.dimension = admin_totals.dimension
     -- Values used by fewer users than the minimum group size are left out (cost shares are of the values shown).
     and (t.users >= min_users or min_users <= 1)
   order by t.events desc, t.value;
end
$$;

comment on function tally.admin_totals(text) is
  'Platform lifetime totals per value of a declared dimension (raises PT010 otherwise): events, failures, quantity, duration, cost, users; averages per event (duration per timed event) and per user; share of the cost of the values shown in %. Values with fewer users than the minimum group size (tally.analytics_settings) are left out. As of refreshed_at. Requires tally_analyst.';
