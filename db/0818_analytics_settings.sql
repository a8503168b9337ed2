-- ============================================================================
-- Analytics settings: one row, written by the owner, read by analysts.
-- ============================================================================

-- The minimum group size: the fewest distinct users an analyst-facing breakdown row or a peer distribution may describe.
-- Read by the admin read functions and the peer distribution (through tally._analytics_min_group_size); written by tally.set_min_group_size.
create table tally.analytics_settings (
  id             boolean     primary key default true
                             constraint analytics_settings_has_one_row check (id),
  min_group_size integer     not null default 5
                             constraint min_group_size_between_1_and_1000 check (min_group_size between 1 and 1000),
  updated_at     timestamptz not null default now()
);

comment on table tally.analytics_settings is
  'One row of settings for the platform analytics. Only the owner writes it (tally.set_min_group_size); analysts may read it. Not a session setting on purpose: an analyst cannot lower it for their own session.';
comment on column tally.analytics_settings.min_group_size is
  'Breakdown rows (per dimension value, kind and format, error code, cohort, funnel step, day) describing fewer distinct users than this are hidden from analysts, and peer distributions of fewer users are not published. 1 shows every group (the explicit opt-out). Default 5.';

insert into tally.analytics_settings default values on conflict do nothing;
