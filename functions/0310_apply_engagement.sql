-- Applier: adds the merge batch (pg_temp._tally_merge) to the engagement profile (sessions, hour-of-week activity; issue: user-facing analytics).
-- Called by tally._merge_pending_locked only; a no-op until that feature lands.
create or replace function tally._apply_engagement()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  return;
end
$$;

comment on function tally._apply_engagement() is
  'Merge applier for the engagement profile (internal).';
