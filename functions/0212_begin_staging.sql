-- Creates this session's staging table pg_temp.tally_staging (if missing) for COPY-based batches.
-- Called by the Python client's record_many (and by any producer) before COPY ... then tally.record_usage_staged().
create or replace function tally.begin_staging()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('pg_temp.tally_staging') is null then
    -- Rows live until the end of the transaction that stages them.
    create temporary table tally_staging (
      event_id          text,
      user_id           text,
      kind              text,
      quantity          bigint,
      occurred_at       timestamptz,
      duration_ms       bigint,
      cost              numeric,
      status            text,
      error_code        text,
      billable          boolean,
      attributes        jsonb,
      corrects_event_id text
    ) on commit delete rows;
  end if;
end
$$;

comment on function tally.begin_staging() is
  'Creates the session''s temporary staging table pg_temp.tally_staging (same columns as the log, no rules) for COPY batches; call tally.record_usage_staged() in the same transaction.';
