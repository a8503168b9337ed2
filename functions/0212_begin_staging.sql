-- Creates this session's staging table pg_temp.tally_staging (if missing) for COPY-based batches.
-- Called by the Python client's record_many (and by any producer) before COPY ... then tally.record_usage_staged().
--
-- SECURITY DEFINER so that the owner role owns the table: the caller may only add, read and delete
-- its rows (COPY needs INSERT), never turn it into something that runs code (a rule, a policy, a
-- trigger), so the owner's batch path can read it directly instead of through arrays.
create or replace function tally.begin_staging()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('pg_temp.tally_staging') is null then
    if not has_database_privilege(current_database(), 'TEMPORARY') then
      raise exception using errcode = '42501',
        message = format('the owner role %s may not create temporary tables in this database: grant it TEMPORARY on the database',
                         current_user);
    end if;
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
    -- A temporary table is reachable from its own session only: PUBLIC means this session's role,
    -- whichever it is now or after a SET ROLE.
    grant select, insert, delete on pg_temp.tally_staging to public;
  end if;
end
$$;

comment on function tally.begin_staging() is
  'Creates the session''s temporary staging table pg_temp.tally_staging (same columns as the log, owned by the owner role, rows insertable by the session) for COPY batches; call tally.record_usage_staged() in the same transaction.';
