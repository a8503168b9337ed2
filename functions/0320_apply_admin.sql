-- Applier: adds the merge batch (pg_temp._tally_merge) to the admin analytics (funnel first-reached steps, duration histograms; issue: admin analytics).
-- Called by tally._merge_pending_locked only; a no-op until that feature lands.
create or replace function tally._apply_admin()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  return;
end
$$;

comment on function tally._apply_admin() is
  'Merge applier for the admin analytics (internal).';
