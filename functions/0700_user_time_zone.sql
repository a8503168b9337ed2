-- The time zone a user's local days are counted in (tally.user_settings, default UTC).
-- Called by the user-facing reads (card, history, comparisons, patterns, forecast, insights, ...) to find the user's "today".
create or replace function tally._user_time_zone(user_id text)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select coalesce((select s.time_zone from tally.user_settings s where s.user_id = _user_time_zone.user_id), 'UTC')
  );
end
$$;

comment on function tally._user_time_zone(text) is
  'Time zone of a user (tally.user_settings), UTC when the user has no settings (internal).';
