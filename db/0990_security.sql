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
    -- The one exception: the log has no row-level security, because PostgreSQL
    -- refuses COPY FROM into a table whose policies apply to the user and writers
    -- COPY into it. No role but the owner may read it; readers read their own
    -- rows through the view tally.my_usage_events (granted below).
    if t.rel = 'tally.usage_events'::regclass then
      continue;
    end if;
    execute format('alter table %s enable row level security', t.rel);
    if t.per_user then
      execute format('create policy %I on %s for select to tally_reader using (user_id = tally.current_user_id())',
                     format('readers see their own %s', replace(t.relname, '_', ' ')), t.rel);
      if t.relname <> all (array['event_keys', 'reversals', 'user_locks']) then  -- internal per-user tables stay the owner's
        execute format('grant select on %s to tally_reader', t.rel);
      end if;
    elsif t.relname = 'refresh_log' then
      -- Analysts read how fresh the views they query are (analytics_freshness); it holds no user data.
      execute format('create policy %I on %s for select to tally_analyst using (true)',
                     'analysts read the refresh log', t.rel);
    elsif t.relname = any (array['dimensions', 'plans', 'plan_limits', 'kinds']) then
      execute format('create policy %I on %s for select to tally_reader, tally_analyst using (true)',
                     format('everyone reads %s', replace(t.relname, '_', ' ')), t.rel);
      execute format('grant select on %s to tally_reader, tally_analyst', t.rel);
    end if;
  end loop;
end
$$;

-- Readers read their own raw events through this view (owned by tally_owner, filtered by tally.user_id).
grant select on tally.my_usage_events to tally_reader;

-- Writers append: INSERT/COPY on the contract columns (not recorded_at), the record functions.
grant insert (event_id, user_id, kind, occurred_at, quantity, duration_ms, cost, status, error_code, billable,
              attributes, corrects_event_id)
  on tally.usage_events to tally_writer;
grant execute on function
  tally.record_usage(text, text, text, bigint, timestamptz, bigint, numeric, text, text, boolean, jsonb, text),
  tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]),
  tally.begin_staging(),
  tally.record_usage_staged(),
  tally._record_staged(),
  tally.reverse_usage(text, text, text),
  tally.amend_usage(text, text, text, bigint, bigint, numeric)
  to tally_writer;

-- Readers see one user through the read API: every function that is STABLE (or
-- IMMUTABLE) and SECURITY INVOKER can neither write nor see past row-level
-- security, so readers may call all of them; SECURITY DEFINER helpers of the
-- reads are granted one by one.
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'tally'::regnamespace and p.prokind = 'f' and not p.prosecdef
       and p.provolatile in ('s', 'i')
       -- the platform analytics (db/0890) are the analysts' alone
       and p.proname not like 'admin\_%' and p.proname not like 'analytics\_%' and p.proname not like '\_analytics\_%'
  loop
    execute format('grant execute on function %s to tally_reader', f);
  end loop;
end
$$;
-- (No SECURITY DEFINER helper is granted to readers: the peer percentile reads
-- the anonymized tally.peer_distribution_mv, db/0890.)

-- Producers check a quota in their own transaction before metered work.
grant execute on function tally.check_quota(text, text, bigint, timestamptz) to tally_writer;
