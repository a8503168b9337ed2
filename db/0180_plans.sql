-- Plans users can subscribe to: tier rank and monthly price (limits are in tally.plan_limits).
-- Written by tally.upsert_plan; read by tally.plan_at, the quota check, the forecast and the summary card.
create table tally.plans (
  plan          text        primary key
                            constraint plan_name_is_identifier check (plan ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  tier          integer     not null default 0
                            constraint tier_not_negative check (tier >= 0),
  monthly_price numeric     not null default 0
                            constraint monthly_price_not_negative check (monthly_price >= 0),
  is_default    boolean     not null default false,
  description   text,
  updated_at    timestamptz not null default now()
);

-- At most one default plan: the plan of users without a current subscription.
create unique index plans_one_default on tally.plans (is_default) where is_default;

comment on table tally.plans is
  'Plans (a small reference table, not per user): tier rank (higher is better), monthly price and whether it is the default plan of users without a subscription. Per-kind limits live in tally.plan_limits. Write through tally.upsert_plan.';
comment on column tally.plans.tier is 'Rank of the plan; the highest tier a user reached is derived from it.';
comment on column tally.plans.monthly_price is 'Price of one billing month, exact; copied into each subscription when it starts.';
comment on column tally.plans.is_default is 'The plan in force for users without a current subscription (at most one).';
