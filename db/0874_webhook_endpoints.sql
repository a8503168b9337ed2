-- Webhook endpoints that receive the threshold alerts, signed per the Standard Webhooks specification.
-- Written by tally.add_webhook_endpoint / tally.remove_webhook_endpoint (`pgtally webhook`); read by `pgtally deliver-alerts`.
create table tally.webhook_endpoints (
  endpoint_id bigint      generated always as identity primary key,
  url         text        not null
                          constraint webhook_url_is_http check (url ~ '^https?://[^[:space:]]+$' and length(url) <= 2000),
  secret      text        not null
                          constraint webhook_secret_is_whsec check (secret ~ '^whsec_[A-Za-z0-9+/]{22,}={0,2}$'),
  enabled     boolean     not null default true,
  description text,
  created_at  timestamptz not null default now()
);

comment on table tally.webhook_endpoints is
  'Where threshold alerts are delivered (owner only: the secrets sign the deliveries). An endpoint receives the alerts recorded after it was added; a disabled one receives nothing until enabled again.';
comment on column tally.webhook_endpoints.secret is 'Standard Webhooks signing secret: whsec_ and the base64 of the HMAC-SHA256 key.';
