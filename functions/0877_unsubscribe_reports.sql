-- Ends the e-mail summary subscription whose unsubscribe link carries token; true when one ended.
-- Called by application backends (the unsubscribe link of every summary) as tally_reader, with or without tally.user_id.
create or replace function tally.unsubscribe_reports(token text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- The token is the credential: 32 random bytes as unpadded base64url. Anything else matches nothing,
  -- including the other spellings of the same bytes: the last of 43 characters carries 4 bits, so its
  -- 2 padding bits must be zero (otherwise 4 different links would decode to the one token).
  if token is null or token !~ '^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$' then
    return false;
  end if;
  delete from tally.report_subscriptions s
   where s.unsubscribe_token = decode(translate(token, '-_', '+/') || '=', 'base64');
  return found;
end
$$;

comment on function tally.unsubscribe_reports(text) is
  'Deletes the report subscription whose unsubscribe token is token (the link in every summary) and returns true; returns false, changing nothing, for an unknown or malformed token or one already used. Needs no tally.user_id: the token is the credential.';
