-- Removes a webhook endpoint with its delivery state and log; true when it existed.
-- Called by DBAs and `pgtally webhook remove`.
create or replace function tally.remove_webhook_endpoint(endpoint_id bigint)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from tally.webhook_endpoints e where e.endpoint_id = remove_webhook_endpoint.endpoint_id;
  return found;
end
$$;

comment on function tally.remove_webhook_endpoint(bigint) is
  'Deletes a webhook endpoint, its delivery state and its delivery log; returns false when there is no such endpoint. To pause deliveries instead, set enabled = false on tally.webhook_endpoints.';
