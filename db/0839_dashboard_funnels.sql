-- The funnels the refresh precomputes for the named timeframes (the dashboard's funnel), each an ordered list of kinds.
-- Written by tally.declare_funnel and tally.drop_funnel (the owner); read by tally.admin_funnel_mv at refresh time.
create table tally.dashboard_funnels (
  steps       text[]      primary key
                          constraint dashboard_funnel_has_1_to_20_steps check (cardinality(steps) between 1 and 20)
                          constraint dashboard_funnel_steps_are_kinds
                            check (array_position(steps, null) is null and not ('' = any (steps))),
  declared_at timestamptz not null default now()
);

comment on table tally.dashboard_funnels is
  'Funnels (ordered kinds) whose users per step the refresh computes for the named timeframes (24h, 7d, 30d, all) into tally.admin_funnel_mv, so a dashboard reads them in constant time through tally.admin_funnel_window. Any other funnel is computed at call time (by tally.admin_funnel_window over the same instants, and by tally.admin_funnel for any timeframe). Written by tally.declare_funnel and tally.drop_funnel (the owner); analysts may read it.';
comment on column tally.dashboard_funnels.steps is 'The funnel''s kinds in order (1 to 20 distinct, non-empty kinds).';
