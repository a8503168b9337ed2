-- ============================================================================
-- Privileges and row-level security (docs/security.md has the matrix).
-- Runs last, so it covers every table the schema defines: a table with a
-- user_id column is per-user (readers see their own rows); reference tables
-- named below are readable by readers and analysts; every other table
-- (internal: keys, reversals, logs) is for tally_owner only.
-- ============================================================================

revoke all on schema tally from public;
grant usage on schema tally to tally_writer, tally_reader, tally_analyst;

-- Functions: nothing is callable by PUBLIC; each role gets its list below.
revoke execute on all functions in schema tally from public;

do $$
declare
  t record;
begin
  for t in
    select c.oid::regclass as rel, c.relname,
           exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped) as per_user
      from pg_class c
     where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
  loop
    execute format('revoke all on %s from public', t.rel);
    execute format('alter table %s enable row level security', t.rel);
    if t.per_user then
      execute format('create policy %I on %s for select to tally_reader using (user_id = tally.current_user_id())',
                     format('readers see their own %s', replace(t.relname, '_', ' ')), t.rel);
    elsif t.relname = any (array['dimensions']) then
      execute format('create policy %I on %s for select to tally_reader, tally_analyst using (true)',
                     format('everyone reads %s', replace(t.relname, '_', ' ')), t.rel);
      execute format('grant select on %s to tally_reader, tally_analyst', t.rel);
    end if;
  end loop;
end
$$;

-- Writers append: INSERT/COPY on the contract columns (not recorded_at), the record functions.
create policy "writers append usage events" on tally.usage_events for insert to tally_writer with check (true);
grant insert (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
              attributes, corrects_event_id)
  on tally.usage_events to tally_writer;
grant execute on function
  tally.record_usage(text, text, text, bigint, timestamptz, bigint, numeric, text, text, boolean, jsonb, text),
  tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]),
  tally.begin_staging(),
  tally.record_usage_staged(),
  tally.reverse_usage(text, text),
  tally.amend_usage(text, text, bigint, bigint, numeric)
  to tally_writer;

-- Readers see one user (row-level security on every per-user table) through the read API.
grant select on tally.usage_events, tally.pending_deltas, tally.user_totals, tally.user_daily, tally.user_periods,
                tally.user_settings
  to tally_reader;
grant execute on function
  tally.current_user_id(),
  tally._dimension_keys(text),
  tally._dimension_value(text[], text, jsonb),
  tally._dimension_value_combined(text[], text, jsonb),
  tally._period_start(date, integer),
  tally.lifetime_totals(text, text),
  tally.daily_totals(text, text, date, date),
  tally.period_totals(text, timestamptz)
  to tally_reader;
