-- ============================================================================
-- Per-user settings and declared dimensions: the data that steers aggregation.
-- ============================================================================

create table tally.user_settings (
  user_id            text        primary key,
  time_zone          text        not null default 'UTC'
                                 constraint time_zone_must_be_known check (tally._is_valid_time_zone(time_zone)),
  billing_anchor_day smallint    not null default 1
                                 constraint billing_anchor_day_between_1_and_28 check (billing_anchor_day between 1 and 28),
  updated_at         timestamptz not null default now(),
  subscription_anchor_day smallint
                                 constraint subscription_anchor_day_between_1_and_31 check (subscription_anchor_day between 1 and 31)
);

comment on table tally.user_settings is
  'Per-user settings: the IANA time zone that local days are counted in (default UTC) and the day of month a billing period starts. Users without a row use the defaults.';
comment on column tally.user_settings.time_zone is
  'Local days of this user''s rollups are computed in this zone; tally.set_user_settings re-buckets the retained history when it changes.';
comment on column tally.user_settings.billing_anchor_day is
  'Billing periods start on this local day of each month (1-28) while the user has no running subscription.';
comment on column tally.user_settings.subscription_anchor_day is
  'Day of month (1-31, local time) the user''s running subscription started, kept by tally.start_subscription, tally.end_subscription and tally.set_user_settings; NULL without one. The effective anchor of billing periods is coalesce(subscription_anchor_day, billing_anchor_day), clamped to the month''s length.';

create table tally.dimensions (
  name        text        primary key
                          constraint dimension_name_is_identifier check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  keys        text[]      not null
                          constraint dimension_has_1_to_4_keys check (cardinality(keys) between 1 and 4 and array_position(keys, null) is null),
  description text,
  declared_at timestamptz not null default now()
);

comment on table tally.dimensions is
  'Declared dimensions. An event''s value for a dimension is its attribute values for keys joined by ''/'' (the key ''kind'' means the kind column); an event missing any key has no value for that dimension.';
