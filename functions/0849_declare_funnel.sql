-- Declares a funnel (ordered kinds) whose users per step the refresh precomputes for the named timeframes.
-- Called by the owner (product set-up code, `pgtally admin` users' DBA); takes effect at the next refresh.
create or replace function tally.declare_funnel(steps text[])
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  added boolean;
begin
  -- SECURITY DEFINER so that the check and the insert are one call; EXECUTE is the owner's alone
  -- (every funnel declared costs the refresh its journeys for four timeframes and every plan).
  perform tally._check_funnel_steps(steps);
  insert into tally.dashboard_funnels (steps) values (declare_funnel.steps) on conflict do nothing;
  get diagnostics added = row_count;
  return added;
end
$$;

comment on function tally.declare_funnel(text[]) is
  'Declares a funnel (1 to 20 distinct, non-empty kinds in order) for the refresh to precompute for the named timeframes (tally.admin_funnel_window reads it in constant time); true when it was new. Takes effect at the next tally.refresh_analytics. Owner only.';
