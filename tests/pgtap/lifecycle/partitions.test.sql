-- Partitions: an event for a month without a partition lands in the default partition;
-- tally.ensure_partitions creates the month and moves its rows there, totals unchanged.
begin;
select plan(31);

select is(to_regclass('tally.usage_events_2025_01'), null, 'there is no partition for 2025-01');
select ok(tests.tts('j1', 'u1', '2025-01-10 10:00:00+00', 100), 'j1: an event in January 2025');
select ok(tests.tts('j2', 'u1', '2025-01-31 23:59:59+00', 200), 'j2: the last second of January 2025');
select ok(tests.tts('f1', 'u1', '2025-02-01 00:00:00+00', 400), 'f1: the first second of February 2025');
select is((select string_agg(format('%s:%s', event_id, tableoid::regclass), ',' order by event_id) from tally.usage_events),
          'f1:tally.usage_events_default,j1:tally.usage_events_default,j2:tally.usage_events_default',
          'all three land in the default partition');
select is(tests.lifetime_of('u1', 'kind'), 'tts e3 q700 d21000 c0.007 f0', 'lifetime before the move (pending)');
select is(tests.daily_of('u1', 'kind', '2025-01-01', '2025-02-28'),
          '2025-01-10 tts e1 q100 f0 | 2025-01-31 tts e1 q200 f0 | 2025-02-01 tts e1 q400 f0', 'daily before the move (pending)');

select is(tests.result_of($$select tally.ensure_partitions('2025-01-01', '2025-01-01')$$), '1',
          'ensure_partitions creates one partition, moving January''s rows out of the default partition');
select is((select string_agg(format('%s:%s', event_id, tableoid::regclass), ',' order by event_id) from tally.usage_events),
          'f1:tally.usage_events_default,j1:tally.usage_events_2025_01,j2:tally.usage_events_2025_01',
          'January''s rows moved to the new partition, February''s stayed in the default');
select is((select count(*)::int from tally.usage_events_default where occurred_at < '2025-02-01 00:00:00+00'), 0,
          'the default partition holds no January row any more');
select is(tests.counts(), 'events=3 keys=3 pending=3', 'the move neither duplicated nor lost rows, keys or deltas');
select is(tests.lifetime_of('u1', 'kind'), 'tts e3 q700 d21000 c0.007 f0', 'lifetime is unchanged by the move');
select is(tests.daily_of('u1', 'kind', '2025-01-01', '2025-02-28'),
          '2025-01-10 tts e1 q100 f0 | 2025-01-31 tts e1 q200 f0 | 2025-02-01 tts e1 q400 f0', 'daily is unchanged by the move');
select is(tests.result_of($$select tally.ensure_partitions('2025-01-01', '2025-01-01')$$), '0',
          'ensure_partitions again creates nothing');

-- The moved rows and the re-attached default partition keep every guard.
select throws_ok($$update tally.usage_events_2025_01 set quantity = 0$$, 'PT009', null, 'the new partition is immutable');
select throws_ok($$delete from tally.usage_events_default where event_id = 'f1'$$, 'PT009', null,
                 'the re-attached default partition is still immutable');
select is(tests.tts('j1', 'u1', '2025-01-10 10:00:00+00', 100), false, 'j1 is still a duplicate');
select ok(tests.tts('j3', 'u1', '2025-01-20 10:00:00+00', 800), 'a late January event records');
select is((select tableoid::regclass::text from tally.usage_events where event_id = 'j3'), 'tally.usage_events_2025_01',
          'the late event goes to the new partition');
select throws_ok($$insert into tally.usage_events_default (event_id, user_id, kind, quantity, occurred_at)
                   values ('f2', 'u1', 'tts', -1, '2025-02-02 00:00:00+00')$$, 'PT002', null,
                 'the default partition still validates inserts');
select is(tally.reverse_usage('u1', 'j1', 'rj1'), true, 'a moved event can be reversed');

-- j1 reversed, j2, f1, j3: 3 events, 1400 chars.
select is(tests.lifetime_of('u1', 'kind'), 'tts e3 q1400 d21000 c0.014 f0', 'lifetime after the late event and the reversal (pending)');
select is(tests.daily_of('u1', 'kind', '2025-01-01', '2025-02-28'),
          '2025-01-10 tts e0 q0 f0 | 2025-01-20 tts e1 q800 f0 | 2025-01-31 tts e1 q200 f0 | 2025-02-01 tts e1 q400 f0',
          'daily after the late event and the reversal (pending)');
select is(tally.merge_pending(), 5, 'merge folds the five deltas');
select is(tests.lifetime_of('u1', 'kind'), 'tts e3 q1400 d21000 c0.014 f0', 'lifetime is the same after the merge');
select is(tests.daily_of('u1', 'kind', '2025-01-01', '2025-02-28'),
          '2025-01-10 tts e0 q0 f0 | 2025-01-20 tts e1 q800 f0 | 2025-01-31 tts e1 q200 f0 | 2025-02-01 tts e1 q400 f0',
          'daily is the same after the merge');

-- Monthly partitions are months of UTC time whatever the TimeZone of the session that creates them
-- (a scheduler or DBA session may run in another zone). No row waits in the default partition for these months.
select is(tests.result_of($$select tally.ensure_partitions('2025-03-01', '2025-03-01')$$), '1', 'a UTC session creates 2025-03');
set local timezone = 'Pacific/Auckland';
select is(tests.result_of($$select tally.ensure_partitions('2025-04-01', '2025-04-01')$$), '1',
          'an Auckland session creates 2025-04 right after the 2025-03 partition');
select is(tests.result_of($$select tally.ensure_partitions('2025-06-01', '2025-06-01')$$), '1', 'an Auckland session creates 2025-06');
select ok(tests.tts('m1', 'u1', '2025-06-30 18:00:00+00', 1), 'm1: an event at 18:00 UTC on 2025-06-30');
select is((select tableoid::regclass::text from tally.usage_events where event_id = 'm1'), 'tally.usage_events_2025_06',
          'an event of 30 June (UTC) lands in the 2025-06 partition');
set local timezone = 'UTC';

select * from finish();
rollback;
