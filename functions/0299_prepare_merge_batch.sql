-- Creates (or empties) pg_temp._tally_merge, the batch of deltas the appliers add to the aggregates.
-- Called by tally._merge_pending_locked and tally.rebuild.
create or replace function tally._prepare_merge_batch()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('pg_temp._tally_merge') is null then
    create temporary table _tally_merge (
      user_id      text,
      kind         text,
      occurred_at  timestamptz,
      attributes   jsonb,
      events       integer,
      failures     integer,
      quantity     bigint,
      duration_ms  bigint,
      timed_events integer,
      cost         numeric,
      billable     boolean,
      is_use       boolean,
      local_at     timestamp,
      day          date,
      anchor_day   integer,
      plan         text
    ) on commit drop;
  else
    truncate pg_temp._tally_merge;
  end if;
  -- The keys whose threshold alerts the batch may cross, with the plan in force
  -- (tally._record_quota_alerts fills it on a distributed install).
  if to_regclass('pg_temp._tally_alert_keys') is null then
    create temporary table _tally_alert_keys (
      user_id text, period_start date, kind text, anchor_day integer, plan text
    ) on commit drop;
  else
    truncate pg_temp._tally_alert_keys;
  end if;
end
$$;

comment on function tally._prepare_merge_batch() is
  'Creates or empties the transaction''s merge batch pg_temp._tally_merge (deltas with the user''s local time, local day and billing anchor) and pg_temp._tally_alert_keys (internal).';
