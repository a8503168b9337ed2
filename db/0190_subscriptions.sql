-- Subscription history per user: which plan from when to when, at which monthly price.
-- Written by tally.start_subscription / tally.end_subscription; read by tally.plan_at and tally.subscription_summary.
create table tally.subscriptions (
  user_id       text        not null,
  started_at    timestamptz not null,
  plan          text        not null references tally.plans (plan),
  monthly_price numeric     not null
                            constraint subscription_price_not_negative check (monthly_price >= 0),
  ended_at      timestamptz,
  primary key (user_id, started_at),
  constraint subscription_ends_after_start check (ended_at is null or ended_at > started_at)
);

comment on table tally.subscriptions is
  'Subscription history per user (internal; write through tally.start_subscription and tally.end_subscription, which keep a user''s subscriptions from overlapping). ended_at NULL means still running. The price is the plan''s monthly price when the subscription started.';
comment on column tally.subscriptions.monthly_price is 'Price of one billing month of this subscription, fixed when it started.';
comment on column tally.subscriptions.ended_at is 'When the subscription ended (exclusive); NULL while it runs. Starting another plan ends the running one at the new start.';
