-- Adds a webhook endpoint for the threshold alerts, with a new signing secret unless one is given.
-- Called by DBAs and `pgtally webhook add`.
create or replace function tally.add_webhook_endpoint(url text, secret text default null, description text default null)
returns table (endpoint_id bigint, endpoint_url text, signing_secret text)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  key text := coalesce(secret, 'whsec_' || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'));
begin
  if url is null or url !~ '^https?://[^[:space:]]+$' or length(url) > 2000 then
    raise exception using errcode = 'PT011', column = 'url',
      message = format('url %L must be an http:// or https:// URL without spaces (at most 2000 characters)', left(url, 300));
  elsif key !~ '^whsec_[A-Za-z0-9+/]{22,}={0,2}$' then
    raise exception using errcode = 'PT011', column = 'secret',
      message = 'secret must be whsec_ followed by the base64 of a key of at least 16 bytes';
  end if;
  return query
  insert into tally.webhook_endpoints as e (url, secret, description)
  values (add_webhook_endpoint.url, key, add_webhook_endpoint.description)
  returning e.endpoint_id, e.url, e.secret;
end
$$;

comment on function tally.add_webhook_endpoint(text, text, text) is
  'Adds a webhook endpoint that receives the threshold alerts recorded from now on, signed per the Standard Webhooks specification; returns its id, URL and signing secret (whsec_..., generated from 32 random bytes unless given). PT011 names url or secret.';
