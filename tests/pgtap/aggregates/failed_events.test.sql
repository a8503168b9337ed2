-- Failed events count as failures only: no events, no usage, never billable, and they do not move
-- first_at/last_at. Cancelled events contribute nothing. Same through record_usage and the batch.
begin;
select plan(19);

-- u1 (UTC): one success, two failures (one carrying a quantity), one cancellation.
select ok(tests.tts('s1', 'u1', '2026-11-10 10:00:00+00', 100), 's1 succeeded: 100 chars');
select ok(tally.record_usage('f1', 'u1', 'tts', 50, '2026-11-10 11:00:00+00', duration_ms => 3000, cost => 0.0005,
                             status => 'failed', error_code => 'provider_timeout',
                             attributes => '{"voice": "af_alloy", "model": "kokoro"}'),
          'f1 failed although it reports 50 chars, 3000 ms and a cost');
select ok(tests.tts('f2', 'u1', '2026-11-11 09:00:00+00', 70, status => 'failed'), 'f2 failed the next day (the latest event)');
select ok(tests.tts('c1', 'u1', '2026-11-11 10:00:00+00', 30, status => 'cancelled'), 'c1 was cancelled');
-- u2 only ever failed, through the batch path.
select is(tests.batch(array['g1', 'g2'], 'u2', array[10, 20]::bigint[], statuses => array['failed', 'failed'],
                      costs => array[0.1, 0.2]::numeric[], error_codes => array['quota', 'quota']), 2,
          'u2: two failed events through record_usage_batch');

select is(tests.lifetime_of('u1', 'kind'), 'tts e1 q100 d7000 c0.001 f2', 'u1: one event, only its usage, two failures (pending)');
select is(tests.lifetime_of('u1', 'voice'), 'af_alloy e1 q100 d7000 c0.001 f2', 'the failures count in the voice dimension too (pending)');
select is((select format('%s %s', to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), to_char(last_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'))
             from tally.lifetime_totals('u1', 'kind')),
          '2026-11-10 10:00 2026-11-10 10:00', 'first_at and last_at are the success only, not the later failure (pending)');
select is(tests.daily_of('u1', 'kind', '2026-11-01', '2026-11-30'), '2026-11-10 tts e1 q100 f1 | 2026-11-11 tts e0 q0 f1',
          'daily: failures on their day, no usage from them (pending)');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), '2026-11-01..2026-12-01 tts e1 q100 d7000 c0.001',
          'the billing period counts the success only (pending)');
select is(tests.lifetime_of('u2', 'kind'), 'tts e0 q0 d c0 f2', 'u2: two failures and no usage (pending)');
select is(tests.period_of('u2', '2026-11-20 00:00:00+00'), '', 'u2 has nothing in its billing period (pending)');

select is(tally.merge_pending(), 6, 'merge folds the six deltas');
select is(tests.lifetime_of('u1', 'kind'), 'tts e1 q100 d7000 c0.001 f2', 'u1 lifetime is the same after the merge');
select is((select format('%s %s', to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), to_char(last_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'))
             from tally.lifetime_totals('u1', 'kind')),
          '2026-11-10 10:00 2026-11-10 10:00', 'first_at and last_at are the same after the merge');
select is(tests.daily_of('u1', 'kind', '2026-11-01', '2026-11-30'), '2026-11-10 tts e1 q100 f1 | 2026-11-11 tts e0 q0 f1',
          'u1 daily is the same after the merge');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), '2026-11-01..2026-12-01 tts e1 q100 d7000 c0.001',
          'u1 billing period is the same after the merge');
select is(tests.lifetime_of('u2', 'kind'), 'tts e0 q0 d c0 f2', 'u2 lifetime is the same after the merge');
select is(tests.period_of('u2', '2026-11-20 00:00:00+00'), '', 'u2 billing period is still empty after the merge');

select * from finish();
rollback;
