-- ============================================================================
-- Ownership and PUBLIC: tally_owner owns the schema and every object in it, so
-- SECURITY DEFINER functions run as tally_owner and only its members can
-- migrate; PUBLIC holds nothing. The migration runner calls the same function
-- after every upgrade (migrations/env.py), so a later revision's objects are
-- covered too. Ownership is kept (with a notice) when the installing role may
-- not give objects away.
-- ============================================================================

select tally._secure_objects();
