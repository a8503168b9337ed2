-- Stops precomputing a declared funnel; tally.admin_funnel_window computes it at call time from then on.
-- Called by the owner; the precomputed rows go at the next refresh.
create or replace function tally.drop_funnel(steps text[])
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  removed boolean;
begin
  delete from tally.dashboard_funnels f where f.steps = drop_funnel.steps;
  get diagnostics removed = row_count;
  return removed;
end
$$;

comment on function tally.drop_funnel(text[]) is
  'Stops precomputing a declared funnel (true when it was declared); its precomputed rows go at the next tally.refresh_analytics, and tally.admin_funnel_window computes it at call time from then on. Owner only.';
