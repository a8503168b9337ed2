-- The session an event belongs to: attributes.session_id, else for a session-kind event its own key from occurred_at.
-- Called by the engagement applier and by tally.engagement_profile (pending deltas); NULL for events outside sessions.
create or replace function tally._session_key(kind text, attributes jsonb, occurred_at timestamptz)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- Epoch seconds, not timestamptz text: the key must not depend on the session's TimeZone or DateStyle.
  -- A reversal copies its original's occurred_at and attributes, so it lands on the same key.
  select coalesce(case when length(attributes ->> 'session_id') > 200 then tally._bounded_key(attributes ->> 'session_id')
                       else nullif(attributes ->> 'session_id', '') end,
                  case when kind = 'session' then 'at:' || extract(epoch from occurred_at)::text end)
$$;

comment on function tally._session_key(text, jsonb, timestamptz) is
  'Session key of an event: attributes.session_id (over 200 characters shortened by tally._bounded_key), or ''at:<epoch>'' for a session-kind event without one; NULL otherwise (internal).';
