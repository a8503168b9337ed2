-- Week-over-week cards: the 7 days ending as_of against the 7 before, platform metrics (events, active, new and
-- paying users, success rate, cost) and any metric per kind, with absolute and % deltas and a trend flag.
begin;
select plan(8);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

create function tests.cards(as_of date, metrics text[])
returns text language sql as $$
  select string_agg(format('%s/%s %s %s %s %s %s', c.metric, c.value, trim_scale(c.this_week), trim_scale(c.last_week),
                           trim_scale(c.delta), coalesce(c.delta_pct::text, '-'), c.trend), ' | ')
    from tally.admin_week_over_week(as_of) c
   where c.metric = any (metrics) and c.value = '*'
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
select ok(tally.merge_pending() = 11 and (select count(*) = 9 from tally.refresh_analytics()), 'merged and refreshed');

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
          'success_rate/* 80 75 5 6.7 up | succeeded/* 4 3 1 33.3 up | cost/* 0.006 0.002 0.004 200.0 up | billable_cost/* 0.006 0.002 0.004 200.0 up',
          'success rate (4 of 5 against 3 of 4 attempts) and cost cards');
select is((select string_agg(format('%s/%s %s %s %s %s %s', c.metric, c.value, trim_scale(c.this_week), trim_scale(c.last_week),
                                    trim_scale(c.delta), coalesce(c.delta_pct::text, '-'), c.trend), ' | ')
             from tally.admin_week_over_week('2026-10-14') c where c.value <> '*'),
          'events/ocr 1 1 0 0.0 stable | events/tts 3 2 1 50.0 up | failures/ocr 0 0 0 - stable | failures/tts 1 1 0 0.0 stable | '
          'quantity/ocr 2 1 1 100.0 up | quantity/tts 600 200 400 200.0 up | duration_ms/ocr 0 0 0 - stable | '
          'duration_ms/tts 21000 14000 7000 50.0 up | cost/ocr 0 0 0 - stable | cost/tts 0.006 0.002 0.004 200.0 up',
          'any metric per kind, % delta NULL when last week is 0');
select is((select format('%s..%s', c.week_start, c.week_end) from tally.admin_week_over_week('2026-10-14') c limit 1),
          '2026-10-08..2026-10-14', 'the card says which week it is');

select * from finish();
rollback;
