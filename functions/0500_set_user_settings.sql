-- Sets a user's time zone and billing anchor day (upsert); validates both and re-buckets the user's retained rollups when either changes.
-- Called by application backends when a user changes preferences.
create or replace function tally.set_user_settings(user_id text, time_zone text default 'UTC', billing_anchor_day integer default 1)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  old_tz     text;
  old_anchor integer;
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
  -- One change of a user's billing settings or subscriptions at a time.
  perform tally._lock_user(set_user_settings.user_id, 'subscription');
  old_tz := tally._user_time_zone(set_user_settings.user_id);
  old_anchor := tally._period_anchor(set_user_settings.user_id);
  insert into tally.user_settings as s (user_id, time_zone, billing_anchor_day)
  values (set_user_settings.user_id, set_user_settings.time_zone, set_user_settings.billing_anchor_day)
  on conflict on constraint user_settings_pkey do update
    set time_zone = excluded.time_zone, billing_anchor_day = excluded.billing_anchor_day,
        updated_at = excluded.updated_at;  -- the default now(): Citus allows no volatile call here
  -- Local days and the open billing period must be exact at commit, not after the next rebuild.
  perform tally._sync_billing_anchor(set_user_settings.user_id, old_tz, old_anchor);
end
$$;

comment on function tally.set_user_settings(text, text, integer) is
  'Sets a user''s time zone and billing anchor day (1-28; a running subscription''s start day takes precedence). When the zone or the effective anchor changes, the user''s rollups are rebuilt from the retained log in the same transaction (merges wait for its commit); days and billing periods older than the retained log keep their old buckets.';
