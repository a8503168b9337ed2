-- True when tz is a time zone name PostgreSQL understands ('UTC', 'America/Los_Angeles', '+05:30').
-- Called by the user_settings check constraint and by tally.set_user_settings.
create or replace function tally._is_valid_time_zone(tz text)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if tz is null or length(tz) > 64 then
    return false;
  end if;
  perform now() at time zone tz;
  return true;
exception
  when invalid_parameter_value then
    return false;
end
$$;

comment on function tally._is_valid_time_zone(text) is
  'True when the argument is a time zone name PostgreSQL accepts; used by checks on user settings.';
