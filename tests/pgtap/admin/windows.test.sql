-- The timeframes of the admin figures, at instants passed in: a rolling 24 hours includes an event 23 hours before its
-- end and leaves out one 25 hours before, across midnight; a window's whole UTC days come from the merged day tables
-- plus pending deltas, its partial days from the raw log (by the rules of tally.event_contributions); where retention
-- dropped a partial day's log the whole day is read and the window says so; a range of UTC days [from_day, to_day)
-- leaves out every event before and after it, in every figure.
begin;
select plan(15);

select is(tally.set_min_group_size(1), 5, 'exact answers from a handful of users: show every group');

-- Totals of one dimension over [from_at, to_at) as 'value e<events> u<users>', and the window read.
create function tests.window_of(from_at timestamptz, to_at timestamptz, dimension text default 'voice')
returns text language sql as $$
  select coalesce(string_agg(format('%s e%s u%s', v.value, v.events, v.users), ' | ' order by v.value), '')
    from tally._analytics_values(from_at, to_at, dimension) v
   where v.plan = '*'
$$;
create function tests.read_of(from_at timestamptz, to_at timestamptz)
returns text language sql as $$
  select format('%s..%s', to_char(s.window_start at time zone 'UTC', 'MM-DD HH24:MI'), to_char(s.window_end at time zone 'UTC', 'MM-DD HH24:MI'))
    from tally._analytics_span(from_at, to_at) s
$$;

-- The 24 hours ending Nov 10 10:00 UTC: Nov 9 10:00 (in: the start is included) .. Nov 10 10:00 (out: the end is not).
select ok(tests.tts('h25', 'u1', '2026-11-09 09:00+00', voice => 'out25')      -- 25 hours before the end
      and tests.tts('h24', 'u2', '2026-11-09 10:00+00', voice => 'at_start')   -- exactly 24 hours before
      and tests.tts('h23', 'u3', '2026-11-09 11:00+00', voice => 'in23')       -- 23 hours before, the day before the end
      and tests.tts('h0', 'u4', '2026-11-10 10:00+00', voice => 'at_end')      -- the end itself
      and tests.tts('h1', 'u5', '2026-11-10 09:00+00', voice => 'in23'),       -- an hour before, after midnight
   'events around the 24 hours ending Nov 10 10:00');
select ok(tally.merge_pending() = 5, 'merged');
select is(tests.window_of('2026-11-09 10:00+00', '2026-11-10 10:00+00'), 'at_start e1 u1 | in23 e2 u2',
          'the last 24 hours: 23 hours before the end is in, 25 hours before is out, across midnight');
select is(tests.read_of('2026-11-09 10:00+00', '2026-11-10 10:00+00'), '11-09 10:00..11-10 10:00', 'exact instants');

-- Seven days ending Nov 10 10:00: a head (Nov 3 from 10:00) and a tail (Nov 10 to 10:00) from the log, the whole
-- days Nov 4-9 from the day table (merged) and the pending deltas.
select ok(tests.tts('d0', 'u10', '2026-11-03 09:00+00', voice => 'week')       -- before the window, on its first day
      and tests.tts('d1', 'u6', '2026-11-03 11:00+00', voice => 'week')        -- in, on the first (partial) day
      and tests.tts('d2', 'u7', '2026-11-05 12:00+00', voice => 'week')        -- a whole day, merged
      and tests.tts('d9', 'u8', '2026-11-10 11:00+00', voice => 'week'),       -- after the end, on the last day
   'events around the week');
select ok(tally.merge_pending() = 4, 'merged');
select ok(tests.tts('d3', 'u9', '2026-11-06 12:00+00', voice => 'week')        -- a whole day, pending
      and tests.tts('d4', 'u9', '2026-11-03 12:00+00', voice => 'week', status => 'failed')  -- head, pending
      and tally.reverse_usage('u7', 'd2', 'd2-refund'),                              -- a whole day: nets d2 to 0
   'pending events and a reversal, not merged');
select is(tests.window_of('2026-11-03 10:00+00', '2026-11-10 10:00+00'),
          'at_start e1 u1 | in23 e2 u2 | out25 e1 u1 | week e2 u3',
          'a week: d1 (log), d2 reversed (day table + pending reversal, still a user), d3 (pending), d4 failed (a user)');

-- The log of Nov 3 is gone (retention dropped it): the first day is read whole from the day table, and the
-- window says it starts at midnight.
insert into tally.retention_runs (partition_name, range_start, range_end, rows_dropped)
values ('usage_events_test', '2026-10-01', '2026-11-04', 0);
select is(tests.read_of('2026-11-03 10:00+00', '2026-11-10 10:00+00'), '11-03 00:00..11-10 10:00',
          'a partial day whose log retention dropped is read whole: the window read starts at midnight');
select is(tests.window_of('2026-11-03 10:00+00', '2026-11-10 10:00+00'),
          'at_start e1 u1 | in23 e2 u2 | out25 e1 u1 | week e3 u4',
          'and then d0 (before 10:00 on that day) is in it');
delete from tally.retention_runs where partition_name = 'usage_events_test';

-- The log rules of the partial days are the insert trigger's (tally.event_contributions): a mixed bag of events
-- inside one day, read wholly from the log, adds up like the contributions of the same rows.
select ok(tests.tts('m1', 'm', '2026-11-20 10:00+00', 100, duration_ms => 5000)
      and tests.tts('m2', 'm', '2026-11-20 10:05+00', 100, duration_ms => null)
      and tests.tts('m3', 'm', '2026-11-20 10:10+00', 100, status => 'failed')
      and tests.tts('m4', 'm', '2026-11-20 10:15+00', 100, status => 'cancelled')
      and tally.reverse_usage('m', 'm1', 'm1-refund') and tally.amend_usage('m', 'm2', 'm2-fix', 20, 300, 0.5),
   'succeeded, untimed, failed, cancelled, reversed and amended events');
select results_eq(
  $$select sum(d.events)::bigint, sum(d.failures)::bigint, sum(d.quantity)::numeric, sum(d.duration_ms)::numeric,
           sum(d.timed_events)::bigint, sum(d.cost), count(*) filter (where d.billable), count(*) filter (where d.is_use)
      from tally._analytics_deltas('2026-11-20 09:00+00', '2026-11-20 11:00+00') d$$,
  $$select sum(c.events)::bigint, sum(c.failures)::bigint, sum(c.quantity)::numeric, sum(c.duration_ms)::numeric,
           sum(c.timed_events)::bigint, sum(c.cost), count(*) filter (where c.billable), count(*) filter (where c.is_use)
      from tally.event_contributions c
     where c.occurred_at >= '2026-11-20 09:00+00' and c.occurred_at < '2026-11-20 11:00+00'$$,
  'partial days from the log: the same contributions as tally.event_contributions');

-- A range of UTC days through the public functions: Nov 9 only ([Nov 9, Nov 10)).
select is((select format('users=%s events=%s', o.users, o.events) from tally.admin_overview(from_day => '2026-11-09', to_day => '2026-11-10') o),
          'users=3 events=3', 'the overview of Nov 9: h25, h24 and h23, not Nov 8 or Nov 10');
select is((select string_agg(format('%s e%s', l.value, l.events), ' | ' order by l.value)
             from tally.admin_leaderboard('voice', from_day => '2026-11-09', to_day => '2026-11-10') l),
          'at_start e1 | in23 e1 | out25 e1', 'the leaderboard of Nov 9');

select * from finish();
rollback;
