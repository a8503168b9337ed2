-- Records every row of pg_temp.tally_staging through tally.record_usage_batch and empties the table.
-- Called by the Python client's record_many after COPY into the staging table, in the same transaction.
create or replace function tally.record_usage_staged()
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  added integer;
begin
  if to_regclass('pg_temp.tally_staging') is null then
    raise exception using errcode = 'PT011',
      message = 'no staging table in this session: call tally.begin_staging() and COPY into pg_temp.tally_staging first';
  end if;
  -- Arrays are built server-side; the batch function sorts keys itself.
  select tally.record_usage_batch(
           array_agg(s.event_id), array_agg(s.user_id), array_agg(s.kind), array_agg(s.quantity),
           array_agg(s.occurred_at), array_agg(s.duration_ms), array_agg(s.cost), array_agg(s.status),
           array_agg(s.error_code), array_agg(s.billable), array_agg(s.attributes), array_agg(s.corrects_event_id))
    into added
    from pg_temp.tally_staging s;
  -- TRUNCATE: a new empty file instead of dead rows for the next chunk of this transaction to scan.
  truncate pg_temp.tally_staging;
  return coalesce(added, 0);
end
$$;

comment on function tally.record_usage_staged() is
  'Records the rows COPYed into pg_temp.tally_staging (validated all-or-nothing, exactly-once) and empties it; returns how many were new.';
