-- Funnel over an ordered list of kinds: users reaching each step in order, conversion and drop-off per step, per timeframe
-- (and optionally one plan). Called by dashboards, admin.funnel() and `pgtally admin`; reads the merge-maintained tally.user_kind_days.
create or replace function tally.admin_funnel(steps text[], from_at timestamptz default null,
                                              to_at timestamptz default null, plan text default null)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  lo timestamptz := coalesce(from_at, '-infinity');
  hi timestamptz := coalesce(to_at, 'infinity');
  p  text := tally._analytics_plan(plan);
begin
  -- SECURITY DEFINER on purpose: the answer is aggregate, but it is computed from
  -- per-user rows (step days, pending deltas, the log) that analysts may not read.
  -- EXECUTE is granted to tally_analyst only (db/0890_admin_grants.sql).
  perform tally._check_funnel_steps(steps);
  if hi <= lo then
    raise exception using errcode = 'PT011', column = 'to_at',
      message = format('to_at (%s) must be after from_at (%s)', hi, lo);
  end if;
  -- The journeys of the users active at step 1 in the timeframe (tally._funnel_counts),
  -- shaped for analysts with the minimum group size (tally._funnel_table).
  return query select * from tally._funnel_table(steps, tally._funnel_counts(steps, lo, hi, p), statement_timestamp());
end
$$;

comment on function tally.admin_funnel(text[], timestamptz, timestamptz, text) is
  'Funnel over ordered kinds (e.g. {paywall.viewed,paywall.clicked,checkout.started,checkout.completed}) inside [from_at, to_at) (default: all time; exact instants): per step k, the users with succeeded original events of steps 1..k (with plan: recorded under that plan) inside the timeframe at non-decreasing times (uses before from_at do not count; a step done only before the previous one does not count); conversion from step 1 and from the previous step, drop-off. A step reached by fewer users than the minimum group size shows 0 users (as do the steps after it). From the merge-maintained tally.user_kind_days plus pending deltas, so exact at commit (refreshed_at = now); the dashboard''s named timeframes of a declared funnel are precomputed (tally.admin_funnel_window). Requires tally_analyst.';
