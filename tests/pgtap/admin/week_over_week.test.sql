-- Week-over-week cards: the 1, 2 or 4 complete weeks ending as_of against as many weeks before, platform metrics
-- (events, active, new and paying users, success rate, cost) and any metric per kind, including the success rate per
-- kind (succeeded / (succeeded + failed) attempts), with absolute and % deltas and a trend flag; never a partial week.
begin;
select plan(16);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

create function tests.cards(as_of date, metrics text[], weeks integer default 1)
returns text language sql as $$
  select string_agg(format('%s/%s %s %s %s %s %s', c.metric, c.value, coalesce(trim_scale(c.this_week)::text, '-'),
                           coalesce(trim_scale(c.last_week)::text, '-'), coalesce(trim_scale(c.delta)::text, '-'),
                           coalesce(c.delta_pct::text, '-'), coalesce(c.trend, '-')), ' | ')
    from tally.admin_week_over_week(as_of, weeks => weeks) c
   where c.metric = any (metrics) and (c.value = '*' or c.metric = 'success_rate')
$$;

-- This week (Oct 8-14): u1 two TTS blocks, u2 one, u3 a failure, u5 a free OCR of 2 pages.
-- Last week (Oct 1-7): u1 one block, u4 one block, a failure and a free OCR page.
-- Outside both: u6 on Sep 30 and Oct 15.
select ok(tests.tts('w1', 'u1', '2026-10-08 10:00+00', 100) and tests.tts('w2', 'u1', '2026-10-10 10:00+00', 200)
      and tests.tts('w3', 'u2', '2026-10-12 10:00+00', 300) and tests.tts('w4', 'u3', '2026-10-13 10:00+00', 50, status => 'failed')
      and tally.record_usage('w5', 'u5', 'ocr', 2, '2026-10-14 10:00+00')
      and tests.tts('l1', 'u1', '2026-10-02 10:00+00', 100) and tests.tts('l2', 'u4', '2026-10-03 10:00+00', 100)
      and tests.tts('l3', 'u4', '2026-10-03 11:00+00', 80, status => 'failed')
      and tally.record_usage('l4', 'u4', 'ocr', 1, '2026-10-04 10:00+00')
      and tests.tts('x1', 'u6', '2026-09-30 10:00+00', 999) and tests.tts('x2', 'u6', '2026-10-15 10:00+00', 999),
   'eleven events around two weeks');
-- For the 2- and 4-week windows: u7 a block on Sep 20 and a failure on Sep 21; u8 exports on Sep 10 (succeeded),
-- Sep 12 and Aug 25 (failed), and one on Aug 19, a day before the 4-week comparison starts.
select ok(tests.tts('s1', 'u7', '2026-09-20 10:00+00', 10) and tests.tts('s2', 'u7', '2026-09-21 10:00+00', 10, status => 'failed')
      and tally.record_usage('s3', 'u8', 'export', 1, '2026-09-10 10:00+00', attributes => '{"format": "mp3"}')
      and tally.record_usage('s4', 'u8', 'export', 1, '2026-09-12 10:00+00', status => 'failed', attributes => '{"format": "mp3"}')
      and tally.record_usage('s5', 'u8', 'export', 1, '2026-08-25 23:59:59+00', status => 'failed', attributes => '{"format": "mp3"}')
      and tally.record_usage('s6', 'u8', 'export', 1, '2026-08-19 23:59:59+00', attributes => '{"format": "mp3"}'),
   'six events in August and September');
select ok(tally.merge_pending() = 17 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

-- Paying users of a week: a subscription at a price above zero in force at some moment of it (UTC days):
-- u1 pro since Oct 2 (both weeks); u2 pro from Oct 9 10:00 (this week); u4 pro Sep 20 to Oct 1 00:00 (neither: it
-- ended as last week began); u5 pro Oct 7 23:00 to Oct 8 00:00:01 (both); u3 free (never).
select lives_ok($$
  select tally.upsert_plan('free', 0, 0, '{}', true), tally.upsert_plan('pro', 1, 10),
         tally.start_subscription('u1', 'pro', '2026-10-02 00:00+00'), tally.start_subscription('u2', 'pro', '2026-10-09 10:00+00'),
         tally.start_subscription('u4', 'pro', '2026-09-20 00:00+00'), tally.end_subscription('u4', '2026-10-01 00:00+00'),
         tally.start_subscription('u5', 'pro', '2026-10-07 23:00+00'), tally.end_subscription('u5', '2026-10-08 00:00:01+00'),
         tally.start_subscription('u3', 'free', '2026-10-01 00:00+00')
$$, 'subscriptions around the two weeks');
select is(tests.cards('2026-10-14', '{events,active_users,new_users,paying_users}'),
          'events/* 4 3 1 33.3 up | active_users/* 4 2 2 100.0 up | new_users/* 3 2 1 50.0 up | paying_users/* 3 2 1 50.0 up',
          'platform cards: events, WAU, new users, paying users (u1, u2, u5 this week; u1, u5 the week before)');
select is(tests.cards('2026-10-14', '{success_rate,succeeded,cost,billable_cost}'),
          'success_rate/* 80 75 5 6.7 up | succeeded/* 4 3 1 33.3 up | cost/* 0.006 0.002 0.004 200.0 up | '
          'billable_cost/* 0.006 0.002 0.004 200.0 up | success_rate/ocr 100 100 0 0.0 stable | success_rate/tts 75 66.67 8.33 12.5 up',
          'success rate of the platform (4 of 5 against 3 of 4 attempts) and per kind (tts: 3 of 4 against 2 of 3), cost cards');
select is((select string_agg(format('%s/%s %s %s %s %s %s', c.metric, c.value, trim_scale(c.this_week), trim_scale(c.last_week),
                                    trim_scale(c.delta), coalesce(c.delta_pct::text, '-'), c.trend), ' | ')
             from tally.admin_week_over_week('2026-10-14') c where c.value <> '*' and c.metric <> 'success_rate'),
          'events/ocr 1 1 0 0.0 stable | events/tts 3 2 1 50.0 up | failures/ocr 0 0 0 - stable | failures/tts 1 1 0 0.0 stable | '
          'quantity/ocr 2 1 1 100.0 up | quantity/tts 600 200 400 200.0 up | duration_ms/ocr 0 0 0 - stable | '
          'duration_ms/tts 21000 14000 7000 50.0 up | cost/ocr 0 0 0 - stable | cost/tts 0.006 0.002 0.004 200.0 up',
          'any metric per kind, % delta NULL when last week is 0');
select is((select format('%s..%s against %s..%s', c.week_start, c.week_end, c.previous_start, c.previous_end)
             from tally.admin_week_over_week('2026-10-14') c limit 1),
          '2026-10-08..2026-10-14 against 2026-10-01..2026-10-07', 'the card says which weeks it compares');

-- Two weeks: Oct 1-14 against Sep 17-30.
select is(tests.cards('2026-10-14', '{events,active_users,success_rate}', 2),
          'events/* 7 2 5 250.0 up | active_users/* 5 2 3 150.0 up | success_rate/* 77.78 66.67 11.11 16.7 up | '
          'success_rate/ocr 100 - - - - | success_rate/tts 71.43 66.67 4.76 7.1 up',
          '2 weeks: tts 5 of 7 against 2 of 3 (u6 on Sep 30, u7); no OCR the fortnight before (no rate)');
select is((select format('%s..%s against %s..%s', c.week_start, c.week_end, c.previous_start, c.previous_end)
             from tally.admin_week_over_week('2026-10-14', weeks => 2) c limit 1),
          '2026-10-01..2026-10-14 against 2026-09-17..2026-09-30', 'two whole weeks against the two before');
-- Four weeks: Sep 17 - Oct 14 against Aug 20 - Sep 16 (s6 on Aug 19 is in neither).
select is(tests.cards('2026-10-14', '{events,active_users,success_rate}', 4),
          'events/* 9 1 8 800.0 up | active_users/* 7 1 6 600.0 up | success_rate/* 75 33.33 41.67 125.0 up | '
          'success_rate/export - 33.33 - - - | success_rate/ocr 100 - - - - | success_rate/tts 70 - - - -',
          '4 weeks: the export success rate is 1 of 3 the four weeks before (the seeds'' export success rate)');
select is((select format('%s..%s against %s..%s', c.week_start, c.week_end, c.previous_start, c.previous_end)
             from tally.admin_week_over_week('2026-10-14', weeks => 4) c limit 1),
          '2026-09-17..2026-10-14 against 2026-08-20..2026-09-16', 'four whole weeks against the four before');

-- Complete windows only: the refresh day is not over, so it cannot end a window; the day before can.
select ok(tests.result_of(format('(select count(*) from tally.admin_week_over_week(%L))',
                                 (select (max(l.started_at) at time zone 'UTC')::date from tally.refresh_log l)))
            like 'error PT011: as_of (%) must be a UTC day the analytics hold completely:%',
          'a week ending on the refresh day (a partial week) is refused');
select is((select c.week_end from tally.admin_week_over_week() c limit 1),
          (select (max(l.started_at) at time zone 'UTC')::date - 1 from tally.refresh_log l),
          'by default the window ends on the last day complete at the refresh');
select is(tests.result_of($$(select count(*) from tally.admin_week_over_week('2026-10-14', weeks => 3))$$),
          'error PT011: weeks must be 1, 2 or 4 (got 3)', 'weeks is 1, 2 or 4');

select * from finish();
rollback;
