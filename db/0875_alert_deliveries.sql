-- Delivery of threshold alerts to webhook endpoints: the state per alert and endpoint, and a log row per attempt.
-- Written and read by `pgtally deliver-alerts` (pgtally.alerts.deliver_alerts) as the owner.
create table tally.alert_deliveries (
  alert_id        uuid        not null,
  endpoint_id     bigint      not null references tally.webhook_endpoints (endpoint_id) on delete cascade,
  attempts        integer     not null default 0,
  next_attempt_at timestamptz,
  delivered_at    timestamptz,
  primary key (alert_id, endpoint_id)
);

create index alert_deliveries_due on tally.alert_deliveries (next_attempt_at) where delivered_at is null;

comment on table tally.alert_deliveries is
  'Delivery state of each threshold alert to each endpoint: claimed with SELECT ... FOR UPDATE SKIP LOCKED, so two runs never post the same alert to the same endpoint at once; retried with exponential backoff until delivered or out of attempts.';
comment on column tally.alert_deliveries.next_attempt_at is 'When the next attempt is due (NULL: at once, never tried).';
comment on column tally.alert_deliveries.delivered_at is 'When an attempt got a 2xx answer; never posted again after that.';

create table tally.alert_delivery_attempts (
  alert_id        uuid        not null,
  endpoint_id     bigint      not null,
  attempt         integer     not null,
  attempted_at    timestamptz not null default now(),
  status_code     integer,
  error           text,
  next_attempt_at timestamptz,
  delivered_at    timestamptz,
  primary key (alert_id, endpoint_id, attempt),
  foreign key (alert_id, endpoint_id) references tally.alert_deliveries (alert_id, endpoint_id) on delete cascade
);

comment on table tally.alert_delivery_attempts is
  'The delivery log: one row per attempt to post an alert to an endpoint, with the HTTP status (NULL when none came back), the error, when the next attempt is due (NULL when delivered or given up) and when it was delivered.';
