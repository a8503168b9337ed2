-- Exactly-once per user: a repeated (user_id, event_id) is skipped silently (no error, no row, no delta),
-- whatever the path (INSERT, COPY, record_usage, record_usage_batch) and whatever month it names.
begin;
select plan(32);

select ok(tests.result_of($$select tally.ensure_partitions('2026-10-01', '2026-11-01')$$) in ('0', '1', '2'),
          'partitions for 2026-10 and 2026-11 exist (made now or at install)');

-- Plain INSERT twice: the second affects no row and raises nothing; the first wins.
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at)
                               values ('d1', 'u1', 'tts', 10, '2026-11-10 10:00:00+00') returning 1)
                    select count(*)::int from i$$, $$values (1)$$, 'INSERT of a new event_id affects one row');
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at)
                               values ('d1', 'u1', 'tts', 99, '2026-11-10 11:00:00+00') returning 1)
                    select count(*)::int from i$$, $$values (0)$$, 'INSERT of the same event_id again affects no row, without error');
select is((select string_agg(quantity::text, ',') from tally.usage_events where event_id = 'd1'), '10',
          'the first insert of d1 wins');
select is(tally.record_usage('d1', 'u1', 'tts', 10, '2026-11-10 10:00:00+00'), false,
          'record_usage of a key first inserted by INSERT returns false');

-- record_usage twice.
select is(tally.record_usage('r1', 'u1', 'tts', 20, '2026-11-11 10:00:00+00'), true, 'record_usage of a new key returns true');
select is(tally.record_usage('r1', 'u1', 'tts', 20, '2026-11-11 10:00:00+00'), false, 'the same call again returns false');
select is(tally.record_usage('r1', 'u2', 'tts', 500, '2026-11-11 10:00:00+00'), true,
          'the key is per user: another user''s event with the same event_id is a new event of that user');
select is(tally.record_usage('r1', 'u2', 'tts', 500, '2026-11-11 10:00:00+00'), false,
          'and a retry of it is that user''s duplicate');
select is(tests.lifetime_of('u2', 'kind'), 'tts e1 q500 d c0 f0', 'u2 counts its own r1 once');

-- The same key in another month, i.e. another partition.
select is(tally.record_usage('x1', 'u1', 'tts', 30, '2026-11-12 10:00:00+00'), true, 'x1 records in 2026-11');
select is(tally.record_usage('x1', 'u1', 'tts', 30, '2026-10-12 10:00:00+00'), false, 'x1 in 2026-10 (another partition) is a duplicate');
select is(tally.record_usage('x1', 'u1', 'tts', 30, '2025-03-12 10:00:00+00'), false, 'x1 in 2025-03 (the default partition) is a duplicate');
select is(tally.record_usage('y1', 'u1', 'tts', 40, '2025-03-12 10:00:00+00'), true, 'y1 records in the default partition');
select results_eq($$with i as (insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at)
                               values ('y1', 'u1', 'tts', 40, '2026-11-13 10:00:00+00') returning 1)
                    select count(*)::int from i$$, $$values (0)$$, 'INSERT of y1 in a monthly partition is a duplicate');
select is((select string_agg(format('%s:%s', event_id, tableoid::regclass), ',' order by event_id)
             from tally.usage_events where event_id in ('x1', 'y1')),
          'x1:tally.usage_events_2026_11,y1:tally.usage_events_default', 'each key has exactly one row, where it was first recorded');

-- record_usage_batch: duplicates inside the batch and already-recorded keys.
select is(tests.batch(array['b1', 'b2', 'b1'], 'u1', array[1, 2, 4]::bigint[]), 2,
          'a batch repeating b1 records two events');
select is((select string_agg(quantity::text, ',') from tally.usage_events where event_id = 'b1'), '1',
          'the first occurrence of b1 in the batch wins');
select is(tests.batch(array['b2', 'b3', 'd1', 'r1'], 'u1', array[8, 16, 32, 64]::bigint[]), 1,
          'a batch of three recorded keys and one new records one');
select is(tests.batch(array['b4', 'b4'], 'u1', array[100, 200]::bigint[],
                      occurred_ats => array['2026-11-14 10:00:00+00', '2025-03-14 10:00:00+00']::timestamptz[]), 1,
          'a batch with one key in two months records it once');
select is((select string_agg(format('%s:%s', quantity, tableoid::regclass), ',') from tally.usage_events where event_id = 'b4'),
          '100:tally.usage_events_2026_11', 'b4 is its first occurrence, in 2026-11');
select is(tests.batch(array['b1', 'b2', 'b3', 'b4'], 'u1', array[1, 2, 16, 100]::bigint[]), 0,
          'sending the same batch again records nothing');
select is(tally.record_usage('b3', 'u1', 'tts', 16, '2026-11-10 12:00:00+00'), false,
          'a key recorded by a batch is a duplicate for record_usage');

-- COPY: a repeat inside the copy and an already-recorded key.
copy tally.usage_events (event_id, user_id, kind, quantity, occurred_at) from stdin with (format csv);
c1,u1,tts,1000,2026-11-15 10:00:00+00
d1,u1,tts,1000,2026-11-15 10:00:00+00
c1,u1,tts,2000,2026-11-15 11:00:00+00
\.
select is((select string_agg(quantity::text, ',') from tally.usage_events where event_id in ('c1', 'd1')), '10,1000',
          'COPY records c1 once (its first line) and skips d1');

-- u1: d1 10, r1 20, x1 30, y1 40 (2025-03-12), b1 1, b2 2, b3 16, b4 100, c1 1000: 9 events, 1219 units;
-- u2: its own r1.
select is(tests.counts(), 'events=10 keys=10 pending=10', 'ten distinct keys: ten rows, ten keys, ten deltas');
select is(tests.lifetime_of('u1', 'kind'), 'tts e9 q1219 d c0 f0', 'lifetime counts each key once (pending)');
select is(tests.daily_of('u1', 'kind', '2025-01-01', '2026-11-30'),
          '2025-03-12 tts e1 q40 f0 | 2026-11-10 tts e4 q29 f0 | 2026-11-11 tts e1 q20 f0 | 2026-11-12 tts e1 q30 f0 | 2026-11-14 tts e1 q100 f0 | 2026-11-15 tts e1 q1000 f0',
          'daily totals count each key once, on the day of its first occurrence (pending)');
select is(tally.merge_pending(), 10, 'merge folds the ten deltas');
select is(tests.lifetime_of('u1', 'kind'), 'tts e9 q1219 d c0 f0', 'lifetime is the same after the merge');
select is(tests.daily_of('u1', 'kind', '2025-01-01', '2026-11-30'),
          '2025-03-12 tts e1 q40 f0 | 2026-11-10 tts e4 q29 f0 | 2026-11-11 tts e1 q20 f0 | 2026-11-12 tts e1 q30 f0 | 2026-11-14 tts e1 q100 f0 | 2026-11-15 tts e1 q1000 f0',
          'daily totals are the same after the merge');
select is(tests.period_of('u1', '2026-11-20 00:00:00+00'), '2026-11-01..2026-12-01 tts e8 q1179 d0 c0',
          'the November period counts the eight November events once');
select is(tally.record_usage('d1', 'u1', 'tts', 10, '2026-11-10 10:00:00+00'), false,
          'a merged key is still a duplicate');

select * from finish();
rollback;
