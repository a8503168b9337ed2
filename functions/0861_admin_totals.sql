-- Platform totals per value of one declared dimension (kind, model, provider, plan, ...) over a timeframe, optionally of one plan:
-- averages and cost shares. Called by dashboards, admin.totals() / admin.cost_breakdown() and `pgtally admin`.
create or replace function tally.admin_totals(dimension text default 'kind', time_window text default null,
                                              from_day date default null, to_day date default null,
                                              plan text default null)
returns table (value text, events bigint, failures bigint, quantity numeric, unit text, duration_ms numeric, cost numeric,
               users bigint,
               avg_quantity_per_event numeric, avg_duration_ms numeric, avg_cost_per_event numeric,
               avg_events_per_user numeric, avg_quantity_per_user numeric, avg_cost_per_user numeric,
               cost_share_pct numeric, window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._dimension_keys(dimension);
  select * into r from tally._analytics_range(time_window, from_day, to_day, 'all');
  return query
  with t as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.value, m.events, m.failures, m.quantity, m.unit, m.duration_ms, m.timed_events, m.cost, m.users,
           m.window_start, m.window_end, tally._refreshed_at('admin_totals_mv') as refreshed_at
      from tally.admin_totals_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
       and m.dimension = admin_totals.dimension
    union all
    select l.value, l.events, l.failures, l.quantity, l.unit, l.duration_ms, l.timed_events, l.cost, l.users,
           l.window_start, l.window_end, statement_timestamp()
      from tally._analytics_values(r.range_start, r.range_end, admin_totals.dimension, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  )
  select t.value, t.events, t.failures, t.quantity, t.unit, t.duration_ms, t.cost, t.users,
         round(t.quantity / nullif(t.events, 0), 2),
         round(t.duration_ms / nullif(t.timed_events, 0)),
         round(t.cost / nullif(t.events, 0), 6),
         round(t.events::numeric / nullif(t.users, 0), 2),
         round(t.quantity / nullif(t.users, 0), 2),
         round(t.cost / nullif(t.users, 0), 6),
         round(100 * t.cost / nullif(sum(t.cost) over (), 0), 2),
         nullif(t.window_start, '-infinity'), t.window_end, t.refreshed_at
    from t
   -- Values used by fewer users than the minimum group size are left out (cost shares are of the values shown);
   -- with a plan, a value's users are its users on that plan.
   where t.users >= min_users or min_users <= 1
   order by t.events desc, t.value;
end
$$;

comment on function tally.admin_totals(text, text, date, date, text) is
  'Platform totals per value of a declared dimension (raises PT010 otherwise) over a timeframe: a named window (24h, 7d, 30d ending at the refresh; all, the default) as of refreshed_at, or the UTC days [from_day, to_day) at call time (refreshed_at = now); window_start/window_end say which. Events, failures, quantity and its unit (both NULL for a value whose quantities count in different units: never added), duration, cost, users; averages per event (duration per timed event) and per user; share of the cost of the values shown in %. With plan: only events recorded under that plan. Values with fewer users than the minimum group size (tally.analytics_settings) are left out. Requires tally_analyst.';
