-- The funnel of a named timeframe (24h, 7d, 30d, all) as of the refresh: what the admin dashboard shows.
-- Called by dashboards, admin.funnel(window=...), `pgtally admin` and the HTTP API; reads tally.admin_funnel_mv.
create or replace function tally.admin_funnel_window(steps text[], time_window text default '7d',
                                                     plan text default null)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w      text := tally._check_window(time_window);
  p      text := tally._analytics_plan(plan);
  counts bigint[];
  lo     timestamptz;
  hi     timestamptz;
begin
  -- SECURITY DEFINER on purpose, as tally.admin_funnel: the view holds every
  -- step however few users reached it; the minimum group size applies here.
  perform tally._check_funnel_steps(steps);
  -- A declared funnel: precomputed by the refresh, read in constant time.
  select m.users into counts
    from tally.admin_funnel_mv m
   where m.time_window = w and m.steps = admin_funnel_window.steps and m.plan = coalesce(p, '*');
  if found then
    return query select * from tally._funnel_table(steps, counts, tally._refreshed_at('admin_funnel_mv'));
    return;
  end if;
  -- Any other funnel (or plan): computed now over the same instants as the
  -- other panels of this timeframe (the last refresh's, or the install's before
  -- the first refresh: the views are filled when created).
  select o.window_start, o.window_end into lo, hi
    from tally.admin_overview_mv o
   where o.time_window = w and o.plan = '*';
  if not found then
    select a.from_at, a.to_at into lo, hi from tally._analytics_windows(statement_timestamp()) a where a.time_window = w;
  end if;
  return query select * from tally._funnel_table(steps, tally._funnel_counts(steps, lo, hi, p), statement_timestamp());
end
$$;

comment on function tally.admin_funnel_window(text[], text, text) is
  'Funnel over ordered kinds inside a named timeframe (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all: everything before it; default 7d), counted as tally.admin_funnel counts: a declared funnel (tally.declare_funnel; with plan: a plan of tally.plans) is read from the refresh in constant time, refreshed_at = the refresh; any other is computed at call time over the same instants, refreshed_at = now. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). Requires tally_analyst.';
