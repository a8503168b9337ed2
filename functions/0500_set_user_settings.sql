-- Sets a user's time zone and billing anchor day (upsert); validates both.
-- Called by application backends when a user changes preferences.
create or replace function tally.set_user_settings(user_id text, time_zone text default 'UTC', billing_anchor_day integer default 1)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT001', column = 'user_id', message = 'user_id is required';
  elsif not tally._is_valid_time_zone(time_zone) then
    raise exception using errcode = 'PT011', column = 'time_zone',
      message = format('time_zone %L is not a time zone PostgreSQL knows', time_zone);
  elsif billing_anchor_day is null or billing_anchor_day not between 1 and 28 then
    raise exception using errcode = 'PT011', column = 'billing_anchor_day',
      message = format('billing_anchor_day must be between 1 and 28 (got %s)', coalesce(billing_anchor_day::text, 'null'));
  end if;
  insert into tally.user_settings as s (user_id, time_zone, billing_anchor_day)
  values (set_user_settings.user_id, set_user_settings.time_zone, set_user_settings.billing_anchor_day)
  on conflict on constraint user_settings_pkey do update
    set time_zone = excluded.time_zone, billing_anchor_day = excluded.billing_anchor_day, updated_at = now();
end
$$;

comment on function tally.set_user_settings(text, text, integer) is
  'Sets a user''s time zone (local days of later merges) and billing anchor day (1-28).';
