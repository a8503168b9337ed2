-- tally.forget_user: the user is pseudonymized everywhere; platform totals and billing stay exact.
begin;
select plan(15);

select tally.set_user_settings('alice', 'Europe/Berlin', 10);
select tally.record_usage('a1', 'alice', 'tts', 100, occurred_at => '2026-11-12 10:00+00', duration_ms => 7000,
                          cost => 0.5, attributes => '{"voice": "af_alloy", "model": "kokoro"}');
select tally.record_usage('a2', 'alice', 'ocr', 2, occurred_at => '2026-11-13 10:00+00', cost => 0.25);
select tally.record_usage('b1', 'bob', 'tts', 40, occurred_at => '2026-11-12 11:00+00', attributes => '{"voice": "af_alloy"}');
select tally.merge_pending(1);   -- one merged, two pending: both states are pseudonymized

create temp table before as
select (select sum(quantity) from tally.user_totals where dimension = 'kind') as merged_quantity,
       (select sum(quantity) from tally.pending_deltas) as pending_quantity;

-- Rows carrying her id in every table with a user_id column (later features add tables).
create temp table carried (n bigint);
do $$
declare t regclass; n bigint;
begin
  for t in select c.oid::regclass from pg_class c where c.relnamespace = 'tally'::regnamespace and c.relkind in ('r', 'p')
             and not c.relispartition and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'user_id')
  loop
    execute format('select count(*) from %s where user_id = %L', t, 'alice') into n;
    insert into carried values (n);
  end loop;
end $$;

create temp table erased as select tally.forget_user('alice') as pseudonym;

select ok((select pseudonym like 'forgotten-%' from erased), 'forget_user returns the pseudonym');
select is((select count(*)::int from tally.usage_events where user_id = 'alice'), 0, 'alice is gone from the log');
select is((select count(*)::int from tally.event_keys where user_id = 'alice'), 0, 'from the keys');
select is((select count(*)::int from tally.pending_deltas where user_id = 'alice'), 0, 'from the pending deltas');
select is((select count(*)::int from tally.user_totals where user_id = 'alice')
          + (select count(*)::int from tally.user_daily where user_id = 'alice')
          + (select count(*)::int from tally.user_periods where user_id = 'alice'), 0, 'from every rollup');
select is((select count(*)::int from tally.user_settings where user_id = 'alice'), 0, 'from the settings');
select is_empty($$select * from tally.lifetime_totals('alice', 'kind')$$, 'her id finds nothing any more');
select results_eq(format($$select value, events, quantity from tally.lifetime_totals(%L, 'kind') order by value$$,
                         (select pseudonym from erased)),
                  $$values ('ocr'::text, 1::bigint, 2::numeric), ('tts', 1, 100)$$,
                  'her usage counts on under the pseudonym');
select results_eq(format($$select kind, quantity, period_start from tally.period_totals(%L, '2026-11-20 12:00+00') order by kind$$,
                         (select pseudonym from erased)),
                  $$values ('ocr'::text, 2::numeric, '2026-11-10'::date), ('tts', 100, '2026-11-10')$$,
                  'billing counters keep their periods (anchor day 10, Berlin)');
select is((select sum(quantity) from tally.user_totals where dimension = 'kind')
          + (select sum(quantity) from tally.pending_deltas), 142::numeric, 'platform totals are unchanged');
select is((select rows_changed from tally.erasures), (select sum(n)::bigint from carried),
          'the erasure is logged with the number of rows changed');
select cmp_ok((select sum(n)::int from carried), '>=', 11, 'at least log, keys, deltas, rollups and settings carried her id');
select is(tally.forget_user('alice'), null, 'forgetting again is a no-op');
select is((select count(*)::int from tally.erasures), 1, 'and logs nothing');
select tally.merge_pending();
select is((select sum(drifted)::int from tally.verify()), 0, 'verify finds no drift after erasure');

select * from finish();
rollback;
