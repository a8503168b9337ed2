-- Per-kind monthly limits of a plan, in the kind's unit (characters, pages, tokens, ...).
-- Written by tally.upsert_plan; read by tally.check_quota, tally.quota_forecast, tally.recommended_plan and tally.summary_card.
create table tally.plan_limits (
  plan          text   not null references tally.plans (plan) on delete cascade,
  kind          text   not null,
  monthly_limit bigint not null
                       constraint monthly_limit_not_negative check (monthly_limit >= 0),
  primary key (plan, kind)
);

comment on table tally.plan_limits is
  'Billing-period limit of a plan per kind, in the kind''s quantity unit (billable, succeeded usage). A kind without a row is unlimited on that plan.';
comment on column tally.plan_limits.monthly_limit is 'Most quantity of this kind a user of the plan may use in one billing period.';
