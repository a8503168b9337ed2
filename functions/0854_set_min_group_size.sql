-- Sets the minimum group size of the analyst-facing breakdowns and the peer distributions; 1 shows every group (the explicit opt-out).
-- Called by the owner (a DBA, the Python client's admin.set_min_group_size()); analysts and readers may not execute it.
create or replace function tally.set_min_group_size(min_users integer)
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  previous integer;
begin
  if min_users is null or min_users not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'min_users',
      message = format('min_users must be between 1 (show every group) and 1000 (got %s)',
                       coalesce(min_users::text, 'null'));
  end if;
  select s.min_group_size into previous from tally.analytics_settings s for update;
  insert into tally.analytics_settings as s (id, min_group_size, updated_at)
  values (true, min_users, now())
  on conflict (id) do update set min_group_size = excluded.min_group_size, updated_at = excluded.updated_at;
  return coalesce(previous, 5);
end
$$;

comment on function tally.set_min_group_size(integer) is
  'Sets the minimum number of distinct users a breakdown row must describe to be shown to analysts (at once) and a peer distribution must have to be published (at the next refresh); 1 shows every group. Returns the previous value. Owner only; PT011 outside 1..1000.';
