-- ============================================================================
-- Privileges of the reports and alerts (after their functions): readers
-- subscribe their own user and unsubscribe by token; everything else (the
-- outbox, the webhook endpoints and their secrets, the delivery log, adding
-- and removing endpoints) is the owner's. Readers also read their own
-- subscription and alerts through row-level security (db/0990).
-- ============================================================================

grant execute on function tally.subscribe_reports(text), tally.unsubscribe_reports(text) to tally_reader;
