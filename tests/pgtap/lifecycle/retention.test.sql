-- Retention drops whole old partitions of the raw log after merging pending deltas; the rollups
-- (lifetime, daily, billing period) and the exactly-once keys stay.
begin;
select plan(26);

select is(tests.result_of($$select tally.ensure_partitions('2025-06-01', '2025-06-01')$$), '1', 'a partition for June 2025 is created');
select ok(tests.tts('o1', 'u1', '2025-06-10 10:00:00+00', 100), 'o1: 100 chars on 2025-06-10');
select ok(tests.tts('o2', 'u1', '2025-06-30 23:00:00+00', 50, status => 'failed'), 'o2: a failure on 2025-06-30');
select ok(tally.amend_usage('u1', 'o1', 'am1', 10), 'am1: o1 amended by +10 chars');
select ok(tests.tts('x1', 'u2', '2025-06-15 10:00:00+00', 1000), 'x1: an event of u2 in June 2025');
select ok(tests.tts('n1', 'u1', '2026-11-10 10:00:00+00', 200), 'n1: a recent event of u1');
select is((select count(*)::int from tally.usage_events_2025_06), 4, 'four rows sit in the June 2025 partition');

select is(tests.lifetime_of('u1', 'kind'), 'tts e2 q310 d14000 c0.003 f1', 'u1 lifetime before retention');
select is(tests.daily_of('u1', 'kind', '2025-06-01', '2026-11-30'),
          '2025-06-10 tts e1 q110 f0 | 2025-06-30 tts e0 q0 f1 | 2026-11-10 tts e1 q200 f0', 'u1 daily before retention');
select is(tests.period_of('u1', '2025-06-20 00:00:00+00'), '2025-06-01..2025-07-01 tts e1 q110 d7000 c0.001',
          'u1 June 2025 period before retention');

select is((select string_agg(format('%s %s..%s %s', partition_name, range_start, range_end, rows_dropped), ' | ')
             from tally.apply_retention('31 days')),
          'usage_events_2025_06 2025-06-01..2025-07-01 4', 'apply_retention(31 days) drops the June 2025 partition and its 4 rows');
select is(to_regclass('tally.usage_events_2025_06'), null, 'the partition is gone');
select is(tests.counts(), 'events=1 keys=5 pending=0', 'one raw row is left, all five keys are kept, every delta was merged');

select is(tests.lifetime_of('u1', 'kind'), 'tts e2 q310 d14000 c0.003 f1', 'u1 lifetime is unchanged');
select is((select to_char(first_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from tally.lifetime_totals('u1', 'kind')),
          '2025-06-10 10:00', 'u1 first_at still names the dropped event');
select is(tests.lifetime_of('u2', 'kind'), 'tts e1 q1000 d7000 c0.01 f0', 'u2 lifetime is unchanged');
select is(tests.daily_of('u1', 'kind', '2025-06-01', '2026-11-30'),
          '2025-06-10 tts e1 q110 f0 | 2025-06-30 tts e0 q0 f1 | 2026-11-10 tts e1 q200 f0', 'u1 daily is unchanged');
select is(tests.period_of('u1', '2025-06-20 00:00:00+00'), '2025-06-01..2025-07-01 tts e1 q110 d7000 c0.001',
          'u1 June 2025 period is unchanged');

-- The deduplication window outlives the raw rows.
select is(tests.tts('o1', 'u1', '2025-06-10 10:00:00+00', 100), false, 're-recording a dropped event is a duplicate');
select is(tests.tts('o1', 'u1', '2026-11-11 10:00:00+00', 100), false, 're-recording it at another time is a duplicate too');
select is(tests.lifetime_of('u1', 'kind'), 'tts e2 q310 d14000 c0.003 f1', 'the re-recorded duplicates changed nothing');

-- Corrections of a dropped event need explicit amounts.
select throws_ok($$select tally.reverse_usage('u1', 'o1', 'r1')$$, 'PT008', null, 'reverse_usage of a dropped event is PT008');
select ok(tally.record_usage('am2', 'u1', 'tts', -10, '2025-06-10 10:00:00+00', corrects_event_id => 'o1',
                             attributes => '{"voice": "af_alloy", "model": "kokoro"}'),
          'an explicit amendment of the dropped event records');
select is(tests.daily_of('u1', 'kind', '2025-06-01', '2026-11-30'),
          '2025-06-10 tts e1 q100 f0 | 2025-06-30 tts e0 q0 f1 | 2026-11-10 tts e1 q200 f0', 'the amendment hits the kept daily rollup');

select is((select count(*)::int from tally.apply_retention('31 days')), 0, 'a second retention run drops nothing');
select is(tests.lifetime_of('u1', 'kind'), 'tts e2 q300 d14000 c0.003 f1', 'lifetime with the explicit amendment');

select * from finish();
rollback;
