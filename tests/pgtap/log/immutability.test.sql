-- The usage log is immutable: UPDATE, DELETE and TRUNCATE are refused with PT009,
-- through the parent table and directly on its partitions, even when nothing matches.
begin;
select plan(22);

-- One row in a monthly partition, one in the default partition (no partition for 2025-03).
select ok(tests.result_of($$select tally.ensure_partitions('2026-11-01', '2026-11-01')$$) in ('0', '1'),
          'the 2026-11 partition exists (made now or at install)');
select ok(tests.tts('m1', 'u1', '2026-11-10 10:00:00+00'), 'an event in a monthly partition records');
select ok(tests.tts('d1', 'u1', '2025-03-10 10:00:00+00'), 'an event in the default partition records');
select is((select tableoid::regclass::text from tally.usage_events where event_id = 'm1'), 'tally.usage_events_2026_11',
          'm1 sits in its monthly partition');
select is((select tableoid::regclass::text from tally.usage_events where event_id = 'd1'), 'tally.usage_events_default',
          'd1 sits in the default partition');

-- Through the parent.
select throws_ok($$update tally.usage_events set quantity = 1 where event_id = 'm1'$$, 'PT009', null,
                 'UPDATE of a row through the parent is refused');
select throws_ok($$update tally.usage_events set quantity = 1$$, 'PT009', null,
                 'UPDATE of every row through the parent is refused');
select throws_ok($$delete from tally.usage_events where event_id = 'd1'$$, 'PT009', null,
                 'DELETE of a row through the parent is refused');
select throws_ok($$update tally.usage_events set quantity = 1 where event_id = 'no-such-event'$$, 'PT009', null,
                 'UPDATE matching no row is refused too');
select throws_ok($$delete from tally.usage_events where false$$, 'PT009', null,
                 'DELETE matching no row is refused too');
select throws_ok($$truncate tally.usage_events$$, 'PT009', null, 'TRUNCATE of the log is refused');

-- Directly on the partitions.
select throws_ok($$update tally.usage_events_2026_11 set quantity = 1 where event_id = 'm1'$$, 'PT009', null,
                 'UPDATE directly on a monthly partition is refused');
select throws_ok($$delete from tally.usage_events_2026_11 where event_id = 'm1'$$, 'PT009', null,
                 'DELETE directly on a monthly partition is refused');
select throws_ok($$update tally.usage_events_default set status = 'failed' where event_id = 'd1'$$, 'PT009', null,
                 'UPDATE directly on the default partition is refused');
select throws_ok($$delete from tally.usage_events_default$$, 'PT009', null,
                 'DELETE directly on the default partition is refused');

select is((select string_agg(format('%s:%s:%s', event_id, quantity, status), ',' order by event_id) from tally.usage_events),
          'd1:100:succeeded,m1:100:succeeded', 'the refused statements changed nothing');
select is(tests.counts(), 'events=2 keys=2 pending=2', 'nothing was written by the refused statements');

-- Statements matching no row on a partition, and TRUNCATE of a partition: the parent's
-- statement-level triggers do not fire for them.
select throws_ok($$update tally.usage_events_2026_11 set quantity = 1 where event_id = 'no-such-event'$$, 'PT009', null,
                 'UPDATE matching no row directly on a partition is refused');
select throws_ok($$delete from tally.usage_events_default where event_id = 'no-such-event'$$, 'PT009', null,
                 'DELETE matching no row directly on a partition is refused');
select throws_ok($$truncate tally.usage_events_2026_11$$, 'PT009', null,
                 'TRUNCATE directly on a monthly partition is refused');
select throws_ok($$truncate tally.usage_events_default$$, 'PT009', null,
                 'TRUNCATE directly on the default partition is refused');
select is((select count(*)::int from tally.usage_events), 2, 'both rows are still in the log');

select * from finish();
rollback;
