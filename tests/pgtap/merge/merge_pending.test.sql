-- tally.merge_pending folds pending deltas into the rollups: every read gives the same answer
-- before, during (partial merges) and after it; it returns how many deltas it merged.
begin;
select plan(40);

-- The expected answers, hand-computed once (psql variables), checked in every state below.
-- u1 (UTC): m1 tts 100 af_alloy; m2 tts 200 af_bella, reversed by m5; m3 ocr 5 (1200 ms, 0.05); m4 tts failed.
\set u1_kind 'ocr e1 q5 d1200 c0.05 f0 | tts e1 q100 d7000 c0.001 f1'
\set u1_voice 'af_alloy e1 q100 d7000 c0.001 f1 | af_bella e0 q0 d c0 f0'
\set u1_span 'ocr 2026-11-11 09:00..2026-11-11 09:00 | tts 2026-11-10 10:00..2026-11-10 12:00'
\set u1_daily '2026-11-10 af_alloy e1 q100 f0 | 2026-11-10 af_bella e0 q0 f0 | 2026-11-11 af_alloy e0 q0 f1'
\set u1_period '2026-11-01..2026-12-01 ocr e1 q5 d1200 c0.05 | 2026-11-01..2026-12-01 tts e1 q100 d7000 c0.001'
-- u2 (Asia/Tokyo, UTC+9, anchor 11): m6 tts 300 at 20:00 UTC on Nov 10 = 05:00 JST on Nov 11.
\set u2_daily '2026-11-11 tts e1 q300 f0'
\set u2_period '2026-11-11..2026-12-11 tts e1 q300 d7000 c0.003'

select lives_ok($$select tally.set_user_settings('u2', 'Asia/Tokyo', 11)$$, 'u2 lives in Tokyo and bills from the 11th');
select ok(tests.tts('m1', 'u1', '2026-11-10 10:00:00+00', 100)
      and tests.tts('m2', 'u1', '2026-11-10 12:00:00+00', 200, voice => 'af_bella')
      and tally.record_usage('m3', 'u1', 'ocr', 5, '2026-11-11 09:00:00+00', duration_ms => 1200, cost => 0.05)
      and tests.tts('m4', 'u1', '2026-11-11 10:00:00+00', 40, status => 'failed')
      and tally.reverse_usage('u1', 'm2', 'm5')
      and tests.tts('m6', 'u2', '2026-11-10 20:00:00+00', 300), 'six events recorded');
select is((select count(*)::int from tally.pending_deltas), 6, 'six deltas are pending');
select is((select count(*)::int from tally.user_totals) + (select count(*)::int from tally.user_daily)
          + (select count(*)::int from tally.user_periods), 0, 'the rollups are empty before any merge');

-- All pending.
select is(tests.lifetime_of('u1', 'kind'), :'u1_kind', 'u1 lifetime by kind (all pending)');
select is(tests.lifetime_of('u1', 'voice'), :'u1_voice', 'u1 lifetime by voice (all pending)');
select is((select string_agg(format('%s %s..%s', value, to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'),
                                    to_char(last_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')), ' | ' order by value)
             from tally.lifetime_totals('u1', 'kind')), :'u1_span', 'u1 first_at..last_at (all pending)');
select is(tests.daily_of('u1', 'voice', '2026-11-01', '2026-11-30'), :'u1_daily', 'u1 daily by voice (all pending)');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), :'u1_period', 'u1 period (all pending)');
select is(tests.daily_of('u2', 'kind', '2026-11-01', '2026-11-30'), :'u2_daily', 'u2 daily, Tokyo days (all pending)');
select is(tests.period_of('u2', '2026-11-20 00:00:00+00'), :'u2_period', 'u2 period from the 11th (all pending)');

select throws_ok($$select tally.merge_pending(0)$$, 'PT011', null, 'merge_pending(0) is PT011');
select throws_ok($$select tally.merge_pending(-5)$$, 'PT011', null, 'merge_pending(-5) is PT011');

-- Partly merged.
select is(tally.merge_pending(2), 2, 'merge_pending(2) merges two deltas');
select is((select count(*)::int from tally.pending_deltas), 4, 'four deltas are still pending');
select is(tests.lifetime_of('u1', 'kind'), :'u1_kind', 'u1 lifetime by kind (two merged)');
select is(tests.lifetime_of('u1', 'voice'), :'u1_voice', 'u1 lifetime by voice (two merged)');
select is(tests.daily_of('u1', 'voice', '2026-11-01', '2026-11-30'), :'u1_daily', 'u1 daily by voice (two merged)');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), :'u1_period', 'u1 period (two merged)');

select is(tally.merge_pending(3), 3, 'merge_pending(3) merges three more');
select is(tests.lifetime_of('u1', 'kind'), :'u1_kind', 'u1 lifetime by kind (five merged)');
select is(tests.period_of('u2', '2026-11-20 00:00:00+00'), :'u2_period', 'u2 period (five merged)');

-- Fully merged.
select is(tally.merge_pending(), 1, 'merge_pending() merges the last one');
select is(tally.merge_pending(), 0, 'a second call has nothing left and returns 0');
select is((select count(*)::int from tally.pending_deltas), 0, 'nothing is pending');
select is(tests.lifetime_of('u1', 'kind'), :'u1_kind', 'u1 lifetime by kind (all merged)');
select is(tests.lifetime_of('u1', 'voice'), :'u1_voice', 'u1 lifetime by voice (all merged)');
select is((select string_agg(format('%s %s..%s', value, to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'),
                                    to_char(last_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')), ' | ' order by value)
             from tally.lifetime_totals('u1', 'kind')), :'u1_span', 'u1 first_at..last_at (all merged)');
select is(tests.daily_of('u1', 'voice', '2026-11-01', '2026-11-30'), :'u1_daily', 'u1 daily by voice (all merged)');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), :'u1_period', 'u1 period (all merged)');
select is(tests.daily_of('u2', 'kind', '2026-11-01', '2026-11-30'), :'u2_daily', 'u2 daily (all merged)');
select is(tests.period_of('u2', '2026-11-20 00:00:00+00'), :'u2_period', 'u2 period (all merged)');

-- New events on top of merged rollups: an earlier first_at, and the same answers after the next merge.
select ok(tests.tts('m7', 'u1', '2026-11-09 08:00:00+00', 1000), 'm7: 1000 chars on Nov 9, before everything else');
select is(tests.lifetime_of('u1', 'kind'), 'ocr e1 q5 d1200 c0.05 f0 | tts e2 q1100 d14000 c0.011 f1', 'u1 lifetime: merged plus pending');
select is((select to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from tally.lifetime_totals('u1', 'kind') where value = 'tts'),
          '2026-11-09 08:00', 'the pending event moves first_at back');
select is(tests.daily_of('u1', 'kind', '2026-11-01', '2026-11-30'),
          '2026-11-09 tts e1 q1000 f0 | 2026-11-10 tts e1 q100 f0 | 2026-11-11 ocr e1 q5 f0 | 2026-11-11 tts e0 q0 f1',
          'u1 daily by kind: merged plus pending');
select is(tally.merge_pending(), 1, 'the next merge folds the one new delta');
select is(tests.lifetime_of('u1', 'kind'), 'ocr e1 q5 d1200 c0.05 f0 | tts e2 q1100 d14000 c0.011 f1', 'u1 lifetime after that merge');
select is((select to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from tally.lifetime_totals('u1', 'kind') where value = 'tts'),
          '2026-11-09 08:00', 'first_at after that merge');
select is(tests.daily_of('u1', 'kind', '2026-11-01', '2026-11-30'),
          '2026-11-09 tts e1 q1000 f0 | 2026-11-10 tts e1 q100 f0 | 2026-11-11 ocr e1 q5 f0 | 2026-11-11 tts e0 q0 f1',
          'u1 daily by kind after that merge');

select * from finish();
rollback;
