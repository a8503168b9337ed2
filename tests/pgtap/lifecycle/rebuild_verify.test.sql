-- tally.verify reports drift with sample keys; tally.rebuild repairs it and backfills new dimensions.
begin;
select plan(14);

select tally.record_usage('e1', 'u1', 'tts', 100, occurred_at => '2026-11-10 10:00+00', duration_ms => 1000,
                          attributes => '{"voice": "af_alloy", "model": "kokoro"}');
select tally.record_usage('e2', 'u1', 'tts', 50, occurred_at => '2026-11-11 10:00+00', duration_ms => 500,
                          attributes => '{"voice": "af_alloy", "model": "openai"}');
select tally.record_usage('e3', 'u2', 'ocr', 3, occurred_at => '2026-11-11 12:00+00', status => 'failed');
select tally.merge_pending();
select tally.record_usage('e4', 'u1', 'tts', 10, occurred_at => '2026-11-12 10:00+00', attributes => '{"voice": "am_adam"}');

select is((select sum(drifted)::int from tally.verify()), 0, 'a consistent database verifies clean');
select is((select count(*)::int from tally.verify()), 12, 'verify runs twelve checks');

-- Corrupt a daily rollup and a lifetime total behind pgtally's back.
update tally.user_daily set quantity = quantity + 7 where user_id = 'u1' and dimension = 'voice' and day = '2026-11-10';
update tally.user_totals set events = events + 1 where user_id = 'u2' and dimension = 'kind';

select results_eq($$select check_name, drifted from tally.verify() where check_name in ('billing periods vs log', 'daily rollups vs log', 'lifetime totals vs daily rollups', 'log rows vs exactly-once keys') order by check_name$$,
  $$values ('billing periods vs log'::text, 0::bigint), ('daily rollups vs log', 1),
           ('lifetime totals vs daily rollups', 2), ('log rows vs exactly-once keys', 0)$$,
  'verify counts the drifted keys per check');
select is((select sample from tally.verify() where check_name = 'daily rollups vs log'),
          array['u1/voice/2026-11-10/af_alloy'], 'and names them');

select is(tally.rebuild('u1'), 3::bigint, 'rebuilding one user recomputes it from its 3 log rows');
select results_eq($$select check_name, drifted from tally.verify() where check_name in ('billing periods vs log', 'daily rollups vs log', 'lifetime totals vs daily rollups', 'log rows vs exactly-once keys') order by check_name$$,
  $$values ('billing periods vs log'::text, 0::bigint), ('daily rollups vs log', 0),
           ('lifetime totals vs daily rollups', 1), ('log rows vs exactly-once keys', 0)$$,
  'u1 is repaired, u2 is not yet');
select tally.rebuild();
select is((select sum(drifted)::int from tally.verify()), 0, 'a full rebuild repairs everything');
select results_eq($$select value, events, quantity from tally.lifetime_totals('u1', 'voice') order by value$$,
  $$values ('af_alloy'::text, 2::bigint, 150::numeric), ('am_adam', 1, 10)$$, 'reads are exact, pending delta included');
select tally.merge_pending();
select results_eq($$select value, events, quantity from tally.lifetime_totals('u1', 'voice') order by value$$,
  $$values ('af_alloy'::text, 2::bigint, 150::numeric), ('am_adam', 1, 10)$$, 'and stay exact after the next merge');

-- Backfill a dimension declared after the fact.
select tally.declare_dimension('voice_model', '{model,voice}');
select is_empty($$select * from tally.user_totals where dimension = 'voice_model'$$, 'a new dimension has no merged history');
select tally.rebuild(dimension => 'voice_model');
select results_eq($$select value, events, quantity from tally.lifetime_totals('u1', 'voice_model') order by value$$,
  $$values ('kokoro/af_alloy'::text, 1::bigint, 100::numeric), ('openai/af_alloy', 1, 50)$$,
  'rebuild backfills it from the log (am_adam has no model, so no value)');
select is((select sum(drifted)::int from tally.verify()), 0, 'and verify stays clean');
select throws_ok($$select tally.rebuild(dimension => 'colour')$$, 'PT010', null, 'rebuilding an unknown dimension is PT010');
select is((select count(*)::int from tally.usage_events), 4, 'rebuild never touches the log');

select * from finish();
rollback;
