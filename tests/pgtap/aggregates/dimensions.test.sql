-- Dimensions: declared from attribute keys (the key 'kind' means the kind column); a combined
-- dimension joins its values with '/'; an event missing (or with an empty) key has no value for it.
begin;
select plan(23);

select lives_ok($$select tally.declare_dimension('voice_model', array['model', 'voice'], 'model and voice')$$,
                'voice_model is declared with the keys {model,voice}');
select lives_ok($$select tally.declare_dimension('kind_model', array['kind', 'model'])$$,
                'kind_model is declared with the keys {kind,model}');
select is((select keys::text from tally.dimensions where name = 'voice_model'), '{model,voice}', 'the keys are stored in order');

select ok(tests.tts('e1', 'u1', '2026-11-10 10:00:00+00', 100), 'e1: kokoro / af_alloy, 100');
select ok(tests.tts('e2', 'u1', '2026-11-11 10:00:00+00', 50, voice => 'af_bella'), 'e2: kokoro / af_bella, 50');
select ok(tally.record_usage('e3', 'u1', 'tts', 30, '2026-11-11 11:00:00+00', attributes => '{"model": "kokoro"}'),
          'e3: model only, no voice, 30');
select ok(tally.record_usage('e4', 'u1', 'tts', 10, '2026-11-11 12:00:00+00', attributes => '{"model": "kokoro", "voice": ""}'),
          'e4: an empty voice, 10');
select ok(tally.record_usage('e5', 'u1', 'ocr', 5, '2026-11-11 13:00:00+00'), 'e5: ocr without attributes, 5');
select ok(tally.record_usage('e6', 'u1', 'tts', 7, '2026-11-11 14:00:00+00', attributes => '{"voice": "af_alloy", "model": "piper"}'),
          'e6: piper / af_alloy, 7');

select is(tests.lifetime_of('u1', 'voice_model'),
          'kokoro/af_alloy e1 q100 d7000 c0.001 f0 | kokoro/af_bella e1 q50 d7000 c0.0005 f0 | piper/af_alloy e1 q7 d c0 f0',
          'voice_model: values are model/voice; events missing a key are left out (pending)');
select is(tests.lifetime_of('u1', 'kind_model'),
          'tts/kokoro e4 q190 d14000 c0.0015 f0 | tts/piper e1 q7 d c0 f0', 'kind_model uses the kind column (pending)');
select is(tests.lifetime_of('u1', 'voice'),
          'af_alloy e2 q107 d7000 c0.001 f0 | af_bella e1 q50 d7000 c0.0005 f0', 'voice: no value for a missing or empty voice (pending)');
select is(tests.lifetime_of('u1', 'kind'), 'ocr e1 q5 d c0 f0 | tts e5 q197 d14000 c0.0015 f0',
          'kind counts every event (pending)');
select is(tests.daily_of('u1', 'voice_model', '2026-11-01', '2026-11-30'),
          '2026-11-10 kokoro/af_alloy e1 q100 f0 | 2026-11-11 kokoro/af_bella e1 q50 f0 | 2026-11-11 piper/af_alloy e1 q7 f0',
          'daily totals by voice_model (pending)');

select is(tally.merge_pending(), 6, 'merge folds the six deltas');
select is(tests.lifetime_of('u1', 'voice_model'),
          'kokoro/af_alloy e1 q100 d7000 c0.001 f0 | kokoro/af_bella e1 q50 d7000 c0.0005 f0 | piper/af_alloy e1 q7 d c0 f0',
          'voice_model is the same after the merge');
select is(tests.lifetime_of('u1', 'kind_model'),
          'tts/kokoro e4 q190 d14000 c0.0015 f0 | tts/piper e1 q7 d c0 f0', 'kind_model is the same after the merge');
select is(tests.lifetime_of('u1', 'voice'),
          'af_alloy e2 q107 d7000 c0.001 f0 | af_bella e1 q50 d7000 c0.0005 f0', 'voice is the same after the merge');
select is(tests.daily_of('u1', 'voice_model', '2026-11-01', '2026-11-30'),
          '2026-11-10 kokoro/af_alloy e1 q100 f0 | 2026-11-11 kokoro/af_bella e1 q50 f0 | 2026-11-11 piper/af_alloy e1 q7 f0',
          'daily by voice_model is the same after the merge');

-- Unknown dimensions and bad declarations.
select throws_ok($$select * from tally.lifetime_totals('u1', 'provider')$$, 'PT010', 'dimension ''provider'' is not declared',
                 'lifetime_totals of an undeclared dimension is PT010');
select throws_ok($$select * from tally.daily_totals('u1', 'provider', '2026-11-01', '2026-11-30')$$, 'PT010', null,
                 'daily_totals of an undeclared dimension is PT010');
select throws_ok($$select tally.declare_dimension('too_many', array['a', 'b', 'c', 'd', 'e'])$$, 'PT011', null,
                 'a dimension of five keys is PT011');
select throws_ok($$select tally.declare_dimension('no_keys', array[]::text[])$$, 'PT011', null,
                 'a dimension without keys is PT011');

select * from finish();
rollback;
