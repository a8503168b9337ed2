-- The privilege matrix (docs/security.md): what each role may and may not do.
begin;
select plan(48);

-- Login roles for the test, one per pgtally role.
create role t_writer login in role tally_writer;
create role t_reader login in role tally_reader;
create role t_analyst login in role tally_analyst;
create role t_nobody login;

select tally.record_usage('a1', 'alice', 'tts', 100, attributes => '{"voice": "af_alloy"}');
select tally.record_usage('b1', 'bob', 'tts', 50, attributes => '{"voice": "am_adam"}');

-- Row-level security guards every table a role other than the owner may read. The log is the one
-- table without it (PostgreSQL refuses COPY FROM where policies apply, and writers COPY): no role
-- but the owner may read it, and readers read their own rows through tally.my_usage_events.
select is((select count(*)::int from pg_class c
            where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p')
              and not c.relrowsecurity
              and exists (select from (values ('tally_writer'), ('tally_reader'), ('tally_analyst')) r(rolname)
                           where has_table_privilege(r.rolname, c.oid, 'select'))), 0,
          'every table a role other than the owner may read has row-level security enabled');
select is((select array_agg(c.relname::text order by c.relname) from pg_class c
            where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
              and not c.relrowsecurity), array['usage_events'],
          'the log is the only table without row-level security');
select is((select array_agg(r.rolname order by r.rolname)
             from (values ('tally_writer'), ('tally_reader'), ('tally_analyst')) r(rolname)
            where has_table_privilege(r.rolname, 'tally.usage_events', 'select')
               or has_any_column_privilege(r.rolname, 'tally.usage_events', 'select')), null,
          'and no role but the owner may read the log');
select is((select count(*)::int from pg_class c
            where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
              and c.relrowsecurity
              and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id')
              and not exists (select from pg_policy p where p.polrelid = c.oid
                                and pg_get_expr(p.polqual, p.polrelid) like '%current_user_id()%')), 0,
          'every per-user table with row-level security has a policy scoping readers to tally.user_id');
select ok((select 'security_barrier=true' = any (c.reloptions)
                  and pg_get_viewdef(c.oid) like '%current_user_id()%'
             from pg_class c where c.oid = to_regclass('tally.my_usage_events')),
          'the readers'' view of the log filters by tally.user_id behind a security barrier');
select is((select count(*)::int from pg_proc p where p.pronamespace = 'tally'::regnamespace
            and has_function_privilege('public', p.oid, 'execute')), 0, 'PUBLIC may execute no pgtally function');
select is((select count(*)::int from pg_proc p where p.pronamespace = 'tally'::regnamespace
            and p.proname like 'admin\_%' and has_function_privilege('tally_reader', p.oid, 'execute')), 0,
          'readers may execute no admin analytics function');

-- Writer: append only.
set local role t_writer;
select ok(tally.record_usage('w1', 'carol', 'ocr', 1), 'a writer records through record_usage');
select lives_ok($$insert into tally.usage_events (event_id, user_id, kind) values ('w2', 'carol', 'ocr')$$,
                'a writer inserts into the log');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, recorded_at) values ('w3', 'carol', 'ocr', now())$$,
                 '42501', null, 'a writer cannot set recorded_at');
select throws_ok($$select count(*) from tally.usage_events$$, '42501', null, 'a writer cannot read the log');
select throws_ok($$select count(*) from tally.my_usage_events$$, '42501', null, 'nor the readers'' view of it');
select throws_ok($$select * from tally.lifetime_totals('alice', 'kind')$$, '42501', null, 'a writer cannot call read functions');
select throws_ok($$update tally.usage_events set quantity = 0$$, '42501', null, 'a writer cannot update the log');
select throws_ok($$delete from tally.usage_events$$, '42501', null, 'a writer cannot delete from the log');
select throws_ok($$insert into tally.pending_deltas (user_id, kind, occurred_at, attributes, events, failures, quantity,
                   duration_ms, timed_events, cost, billable, is_use) values ('x', 'tts', now(), '{}', 1000, 0, 0, 0, 0, 0, true, true)$$,
                 '42501', null, 'a writer cannot forge deltas');
select throws_ok($$insert into tally.event_keys values ('k', 'x', now(), true)$$, '42501', null, 'a writer cannot forge keys');
select throws_ok($$select tally.merge_pending()$$, '42501', null, 'a writer cannot merge');
select throws_ok($$select * from tally.apply_retention('1 day')$$, '42501', null, 'a writer cannot apply retention');
select throws_ok($$select * from tally.usage_events_default$$, '42501', null, 'a writer cannot read a partition directly');
reset role;

-- Reader scoped to alice.
set local role t_reader;
select set_config('tally.user_id', 'alice', true);
select results_eq($$select value, events::bigint, quantity::numeric from tally.lifetime_totals('alice', 'voice')$$,
                  $$values ('af_alloy'::text, 1::bigint, 100::numeric)$$, 'a reader sees her own totals');
select is_empty($$select * from tally.lifetime_totals('bob', 'voice')$$, 'a reader sees nothing of another user through functions');
select is_empty($$select * from tally.daily_totals('bob', 'kind', '2000-01-01', '2030-01-01')$$, 'nor through daily totals');
select is_empty($$select * from tally.period_totals('bob')$$, 'nor through period totals');
select throws_ok($$select * from tally.usage_events$$, '42501', null, 'a reader cannot read the log itself');
select results_eq($$select event_id, user_id from tally.my_usage_events$$, $$values ('a1'::text, 'alice'::text)$$,
                  'hand-written SQL on the readers'' view of the log sees only her rows');
select is_empty($$select * from tally.my_usage_events where user_id = 'bob'$$, 'and nothing of bob''s');
select results_eq($$select event_id from tally.export_events('alice', '2000-01-01', '2100-01-01')$$, $$values ('a1'::text)$$,
                  'a reader exports her own events');
select is_empty($$select * from tally.export_events('bob', '2000-01-01', '2100-01-01')$$,
                'and nothing of another user''s');
select results_eq($$select distinct user_id from tally.pending_deltas$$, $$values ('alice'::text)$$,
                  'hand-written SQL on pending deltas sees only her rows');
select is((select count(*)::int from tally.user_totals where user_id = 'bob'), 0, 'nor rollups of another user');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind) values ('r1', 'alice', 'tts')$$,
                 '42501', null, 'a reader cannot write');
select throws_ok($$select * from tally.event_keys$$, '42501', null, 'a reader cannot read the key table');
select ok((select bool_and(quantity = 0) from tally.usage_history('bob', '30d', 'day')),
          'the user-facing history of another user is all zeros');
select is((select days_active from tally.engagement_profile('bob')), 0::bigint, 'and his engagement profile is empty');
select lives_ok($$select * from tally.summary_card('alice')$$, 'a reader calls the summary card');
select set_config('tally.user_id', '', true);
select is_empty($$select * from tally.my_usage_events$$, 'a reader without tally.user_id sees nothing');
select is_empty($$select * from tally.export_events('alice', '2000-01-01', '2100-01-01')$$,
                'and exports nothing');
reset role;

-- Analyst: no per-user raw events.
set local role t_analyst;
select throws_ok($$select * from tally.usage_events$$, '42501', null, 'an analyst cannot read raw events');
select throws_ok($$select * from tally.my_usage_events$$, '42501', null, 'nor through the readers'' view');
select throws_ok($$select * from tally.lifetime_totals('alice', 'kind')$$, '42501', null, 'an analyst cannot read a user''s totals');
select lives_ok($$select * from tally.dimensions$$, 'an analyst reads the declared dimensions');
reset role;

-- No role at all.
set local role t_nobody;
select throws_ok($$select tally.record_usage('n1', 'x', 'tts')$$, '42501', null, 'a role without pgtally roles cannot record');
select throws_ok($$select * from tally.dimensions$$, '42501', null, 'nor read reference data');
reset role;

-- Ownership: the schema and its objects belong to tally_owner.
select is((select nspowner::regrole::text from pg_namespace where nspname = 'tally'), 'tally_owner', 'tally_owner owns the schema');
select is((select count(*)::int from pg_class where relnamespace = 'tally'::regnamespace and relkind in ('r', 'p', 'v', 'm')
            and relowner <> 'tally_owner'::regrole), 0, 'tally_owner owns every table and view');
select is((select count(*)::int from pg_proc where pronamespace = 'tally'::regnamespace
            and proowner <> 'tally_owner'::regrole), 0, 'tally_owner owns every function');
select ok((select count(*) from tally.usage_events where user_id = 'carol') = 2, 'the writer''s rows were recorded');

select * from finish();
rollback;
