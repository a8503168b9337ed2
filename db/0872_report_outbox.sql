-- The outbox of the monthly e-mail summaries: one row per user and month, so each summary is sent once.
-- Written and read by `pgtally send-reports` (pgtally.reports.email.send_reports) as the owner.
create table tally.report_outbox (
  user_id    text        not null,
  month      date        not null
                         constraint report_outbox_month_is_first_day check (extract(day from month) = 1),
  status     text        not null default 'pending'
                         constraint report_outbox_status_known check (status in ('pending', 'sent', 'failed')),
  attempts   integer     not null default 0,
  last_error text,
  sent_at    timestamptz,
  message_id text,
  primary key (user_id, month),
  constraint report_outbox_sent_has_time check ((status = 'sent') = (sent_at is not null))
);

-- A run claims the rows of one month that are not sent yet.
create index report_outbox_unsent on tally.report_outbox (month, user_id) where status <> 'sent';

comment on table tally.report_outbox is
  'One row per user and month of the e-mail summary: `pgtally send-reports` inserts the month''s rows (on conflict do nothing), claims each with SELECT ... FOR UPDATE SKIP LOCKED, sends, and marks it sent in the same transaction, so a second run sends nothing again and a killed run''s rows are retried (docs/reports.md).';
comment on column tally.report_outbox.month is 'First day of the summarized calendar month (each user''s local days).';
comment on column tally.report_outbox.status is 'pending (not sent yet), sent, or failed (the last attempt failed; retried until the run''s attempt limit).';
comment on column tally.report_outbox.attempts is 'Finished attempts (sent or failed); an attempt killed before its commit leaves no trace here.';
comment on column tally.report_outbox.message_id is 'The Message-ID header of the sent message, derived from user and month: a resent copy carries the same one.';
