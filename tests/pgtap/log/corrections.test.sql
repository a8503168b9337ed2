-- Corrections: an amendment (signed deltas, events +0) and a reversal (events -1, negated amounts)
-- are new rows booked in the original's buckets; lifetime, daily and period totals move at once.
begin;
select plan(38);

-- u1 (UTC, anchor day 1). tests.tts: quantity = chars, 7000 ms, cost = chars * 0.00001.
select ok(tests.tts('o1', 'u1', '2026-11-10 10:00:00+00', 100), 'o1: 100 chars on 2026-11-10, voice af_alloy');
select ok(tests.tts('o2', 'u1', '2026-11-12 10:00:00+00', 200, voice => 'af_bella'), 'o2: 200 chars on 2026-11-12, voice af_bella');
select ok(tests.tts('o5', 'u1', '2026-10-20 10:00:00+00', 300), 'o5: 300 chars on 2026-10-20 (October period)');
select ok(tests.tts('f1', 'u1', '2026-11-11 10:00:00+00', 50, status => 'failed'), 'f1: a failed event');
select ok(tests.tts('c1', 'u1', '2026-11-11 11:00:00+00', 30, status => 'cancelled'), 'c1: a cancelled event');
select ok(tests.tts('p1', 'u2', '2026-11-10 10:00:00+00'), 'p1: an event of u2');

select is(tests.period_of('u1', '2026-10-25 00:00:00+00'), '2026-10-01..2026-11-01 tts e1 q300 d7000 c0.003',
          'the October period holds o5 before its reversal');

select is(tally.amend_usage('u1', 'o1', 'a1', 20, 500, 0.0002), true, 'amend_usage(o1, +20 chars, +500 ms, +0.0002) records');
select is(tally.reverse_usage('u1', 'o2', 'rv2'), true, 'reverse_usage(o2) records');
select is(tally.reverse_usage('u1', 'o5', 'rv5'), true, 'reverse_usage(o5) records, weeks after o5');
select is(tally.amend_usage('u1', 'o1', 'a1', 20, 500, 0.0002), false, 'retrying the amendment returns false');
select is(tally.reverse_usage('u1', 'o2', 'rv2'), false, 'retrying the reversal returns false');

-- The originals stay; the corrections copy the original's time and attributes.
select is((select string_agg(event_id, ',' order by event_id) from tally.usage_events where user_id = 'u1'),
          'a1,c1,f1,o1,o2,o5,rv2,rv5', 'the originals stay in the log next to their corrections');
select is((select format('%s %s q%s d%s c%s %s %s', status, corrects_event_id, quantity, duration_ms, trim_scale(cost),
                         to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), attributes ->> 'voice')
             from tally.usage_events where event_id = 'a1'),
          'succeeded o1 q20 d500 c0.0002 2026-11-10 10:00 af_alloy', 'the amendment row carries the deltas at o1''s time and voice');
select is((select format('%s %s q%s d%s c%s %s %s', status, corrects_event_id, quantity, duration_ms, trim_scale(cost),
                         to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), attributes ->> 'voice')
             from tally.usage_events where event_id = 'rv2'),
          'reversed o2 q-200 d-7000 c-0.002 2026-11-12 10:00 af_bella', 'the reversal row negates o2 at o2''s time and voice');

-- o1 100+20, o2 200-200 (events 1-1), o5 300-300, f1 a failure, c1 nothing.
select is(tests.lifetime_of('u1', 'kind'), 'tts e1 q120 d7500 c0.0012 f1', 'lifetime by kind reflects both corrections (pending)');
select is(tests.lifetime_of('u1', 'voice'), 'af_alloy e1 q120 d7500 c0.0012 f1 | af_bella e0 q0 d c0 f0',
          'lifetime by voice: the corrections hit their original''s voice (pending)');
select is(tests.daily_of('u1', 'kind', '2026-10-01', '2026-11-30'),
          '2026-10-20 tts e0 q0 f0 | 2026-11-10 tts e1 q120 f0 | 2026-11-11 tts e0 q0 f1 | 2026-11-12 tts e0 q0 f0',
          'daily totals: the corrections hit their original''s day (pending)');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), '2026-11-01..2026-12-01 tts e1 q120 d7500 c0.0012',
          'the November period reflects both corrections (pending)');
select is(tests.period_of('u1', '2026-10-25 00:00:00+00'), '2026-10-01..2026-11-01 tts e0 q0 d0 c0',
          'the reversal of o5 is booked in the October period, not the current one (pending)');

select is(tally.merge_pending(), 9, 'merge folds the nine deltas');
select is(tests.lifetime_of('u1', 'kind'), 'tts e1 q120 d7500 c0.0012 f1', 'lifetime by kind is the same after the merge');
select is(tests.lifetime_of('u1', 'voice'), 'af_alloy e1 q120 d7500 c0.0012 f1 | af_bella e0 q0 d c0 f0',
          'lifetime by voice is the same after the merge');
select is(tests.daily_of('u1', 'kind', '2026-10-01', '2026-11-30'),
          '2026-10-20 tts e0 q0 f0 | 2026-11-10 tts e1 q120 f0 | 2026-11-11 tts e0 q0 f1 | 2026-11-12 tts e0 q0 f0',
          'daily totals are the same after the merge');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), '2026-11-01..2026-12-01 tts e1 q120 d7500 c0.0012',
          'the November period is the same after the merge');
select is(tests.period_of('u1', '2026-10-25 00:00:00+00'), '2026-10-01..2026-11-01 tts e0 q0 d0 c0',
          'the October period is the same after the merge');

-- A correction recorded directly (corrects_event_id), on top of merged rollups.
select ok(tally.record_usage('a2', 'u1', 'tts', -20, '2026-11-10 10:00:00+00', cost => -0.0002, corrects_event_id => 'o1',
                             attributes => '{"voice": "af_alloy", "model": "kokoro"}'),
          'a negative amendment of o1 through record_usage records');
select is(tests.lifetime_of('u1', 'kind'), 'tts e1 q100 d7500 c0.001 f1', 'merged rollups plus the pending amendment');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), '2026-11-01..2026-12-01 tts e1 q100 d7500 c0.001',
          'the period counts the negative amendment');

-- Refused corrections.
select throws_ok($$select tally.amend_usage('u1', 'never-recorded', 'a9', 1)$$, 'PT008', null, 'amending an unknown event is PT008');
select throws_ok($$select tally.reverse_usage('u1', 'never-recorded', 'r9')$$, 'PT008', null, 'reversing an unknown event is PT008');
select throws_ok($$select tally.record_usage('r9', 'u1', 'tts', 0, '2026-11-10 10:00:00+00', status => 'reversed', corrects_event_id => 'p1')$$,
                 'PT008', 'corrects_event_id ''p1'' names no recorded event of user ''u1''',
                 'reversing another user''s event is PT008: an event_id is a key of its own user');
select throws_ok($$select tally.reverse_usage('u1', 'f1', 'r9')$$, 'PT008', null, 'reversing a failed event is PT008');
select throws_ok($$select tally.reverse_usage('u1', 'c1', 'r9')$$, 'PT008', null, 'reversing a cancelled event is PT008');
select throws_ok($$select tally.reverse_usage('u1', 'rv2', 'r9')$$, 'PT008', null, 'reversing a reversal is PT008');
select is(tests.counts(), 'events=10 keys=10 pending=1', 'the refused corrections wrote nothing');

-- A second reversal of the same original under a new event_id would make o2 count -1.
select throws_ok($$select tally.reverse_usage('u1', 'o2', 'rv2-again')$$, 'PT008', null,
                 'reversing an already reversed event again is PT008');
-- A failed event has no usage and is not billable; an amendment must not give it some.
select throws_ok($$select tally.amend_usage('u1', 'f1', 'af1', 50, null, 0.0005)$$, 'PT008', null,
                 'amending a failed event is PT008');

select * from finish();
rollback;
