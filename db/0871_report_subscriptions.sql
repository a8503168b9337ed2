-- Monthly e-mail summaries users subscribed to: one address per user and the token of its unsubscribe link.
-- Written by tally.subscribe_reports and tally.unsubscribe_reports; read by `pgtally send-reports` (pgtally.reports.email).
create table tally.report_subscriptions (
  user_id           text        primary key
                                constraint report_subscription_user_id_bounded check (length(user_id) between 1 and 200),
  email             text        not null
                                constraint report_subscription_email_bounded check (length(email) between 3 and 254),
  unsubscribe_token bytea       not null
                                constraint report_subscription_token_is_32_bytes check (length(unsubscribe_token) = 32),
  created_at        timestamptz not null default now()
);

-- The unsubscribe link carries only the token: looking it up must not scan.
create unique index report_subscriptions_unsubscribe_token on tally.report_subscriptions (unsubscribe_token);

comment on table tally.report_subscriptions is
  'Users subscribed to the monthly usage summary by e-mail (one address per user). Write through tally.subscribe_reports (the reader''s own user) and tally.unsubscribe_reports (the token is the credential); `pgtally send-reports` mails every row once per month through tally.report_outbox. Readers see their own row (row-level security); an erasure deletes the row.';
comment on column tally.report_subscriptions.email is 'Where the summary goes; checked roughly by tally.subscribe_reports (one address, no spaces or commas).';
comment on column tally.report_subscriptions.unsubscribe_token is
  '32 random bytes (two gen_random_uuid values, 244 random bits); the unsubscribe link carries them as unpadded base64url. Kept so that every summary can carry the link; it only unsubscribes this row.';

-- tally.forget_user pseudonymizes every table with a user_id; this one is deleted instead (the address is personal data).
create trigger report_subscriptions_after_update_erase
  after update of user_id on tally.report_subscriptions
  for each row
  when (current_setting('tally.erasing', true) = 'on')
  execute function tally._trg_report_subscriptions_after_update_erase();
