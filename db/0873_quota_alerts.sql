-- Threshold alerts: a user's billable usage of a kind reached 80% or 100% of the plan limit in a billing period.
-- Written by tally._record_quota_alerts (in every merge and rebuild); read by `pgtally deliver-alerts` and the user.
create table tally.quota_alerts (
  user_id       text        not null,
  period_start  date        not null,
  kind          text        not null,
  threshold     integer     not null
                            constraint quota_alert_threshold_known check (threshold in (80, 100)),
  alert_id      uuid        not null default gen_random_uuid(),
  period_end    date        not null,
  plan          text        not null,
  monthly_limit bigint      not null,
  quantity      numeric     not null,
  created_at    timestamptz not null default now(),
  primary key (user_id, period_start, kind, threshold)
);

-- Deliveries name the alert by its id.
create index quota_alerts_alert_id on tally.quota_alerts (alert_id);

comment on table tally.quota_alerts is
  'One row per user, billing period, kind and threshold (80 or 100 percent of the plan''s limit) the user''s merged billable usage reached: recorded by the merge that folded the usage in (tally._record_quota_alerts), so none is missed or recorded twice. Delivered to webhooks by `pgtally deliver-alerts`; readers see their own alerts.';
comment on column tally.quota_alerts.alert_id is 'Stable id of the alert: the webhook-id of every delivery attempt of it, so receivers can drop a repeated delivery.';
comment on column tally.quota_alerts.period_end is 'End (exclusive) of the billing period, a local day.';
comment on column tally.quota_alerts.plan is 'The plan in force at the latest usage of the merge that crossed the threshold.';
comment on column tally.quota_alerts.monthly_limit is 'That plan''s limit for the kind per billing period.';
comment on column tally.quota_alerts.quantity is 'The merged billable quantity of the period when the alert was recorded.';
