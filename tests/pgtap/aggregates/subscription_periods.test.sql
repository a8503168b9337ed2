-- While a subscription runs, billing periods start on the day of month it started (in the user's
-- time zone), on the last day of shorter months; without one they start on billing_anchor_day.
-- Starting or ending a subscription re-buckets the user's merged history in the same transaction.
begin;
select plan(17);
set local timezone = 'UTC';

-- Period bounds only, as 'start..end'.
create function tests.bounds(d date, anchor integer)
returns text language sql as $$
  select format('%s..%s', tally._period_start(d, anchor), tally._period_end(tally._period_start(d, anchor), anchor))
$$;

select is(tests.bounds('2026-02-15', 31) || ' ' || tests.bounds('2026-02-28', 31) || ' ' || tests.bounds('2026-03-30', 31)
          || ' ' || tests.bounds('2026-03-31', 31) || ' ' || tests.bounds('2026-04-30', 31),
          '2026-01-31..2026-02-28 2026-02-28..2026-03-31 2026-02-28..2026-03-31 2026-03-31..2026-04-30 2026-04-30..2026-05-31',
          'anchor 31: Jan 31, then the last day of February, then Mar 31, Apr 30');
select is(tests.bounds('2028-02-28', 30) || ' ' || tests.bounds('2028-02-29', 30) || ' ' || tests.bounds('2028-02-29', 29)
          || ' ' || tests.bounds('2027-02-28', 29) || ' ' || tests.bounds('2026-11-21', 1),
          '2028-01-30..2028-02-29 2028-02-29..2028-03-30 2028-02-29..2028-03-29 2027-02-28..2027-03-29 2026-11-01..2026-12-01',
          'anchors 29 and 30 in February 2028 (29 days) and 2027 (28 days); anchor 1 is the calendar month');

select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 3000}', true)
                  union all select tally.upsert_plan('pro', 1, 10, '{"tts": 4000}')$$, 'free: 3000 chars, pro: 4000 chars');

-- s: 1000 chars on Oct 25 and 2000 on Nov 5 (merged), 500 on Nov 22 (pending); periods from the 1st.
select ok(tests.tts('s1', 's', '2026-10-25 10:00+00', 1000) and tests.tts('s2', 's', '2026-11-05 10:00+00', 2000),
          's: 1000 chars on Oct 25, 2000 on Nov 5');
select is(tally.merge_pending(), 2, 'merged');
select ok(tests.tts('s3', 's', '2026-11-22 10:00+00', 500), 's: 500 chars on Nov 22 (pending)');
select is(tests.period_of('s', '2026-11-22 12:00+00') || ' / ' || tally.check_quota('s', 'tts', 500, '2026-11-22 12:00+00'),
          '2026-11-01..2026-12-01 tts e2 q2500 d14000 c0.025 / 0',
          'no subscription: the calendar month, 2500 of the free 3000 used');

-- s subscribes to pro on Oct 23: periods now run from the 23rd, Oct 23..Nov 23 holds all 3500 chars.
select lives_ok($$select tally.start_subscription('s', 'pro', '2026-10-23 10:00+00')$$, 's subscribes on Oct 23');
select is(tests.period_of('s', '2026-11-22 12:00+00'),
          '2026-10-23..2026-11-23 tts e3 q3500 d21000 c0.035',
          'the period follows the subscription: merged and pending usage since Oct 23');
select ok(tally.check_quota('s', 'tts', 500, '2026-11-22 12:00+00') = 0
          and tests.error_of($$select tally.check_quota('s', 'tts', 501, '2026-11-22 12:00+00')$$)
              like 'PT012: quota exceeded: 3500 of tts used in the period starting 2026-10-23, 501 more would exceed the 4000 limit of plan pro%',
          'the quota check counts the whole subscription period at once: 500 more fit, 501 are refused');
select is(tally.merge_pending(), 1, 'the pending delta is merged with the subscription''s anchor');
select is(tests.period_of('s', '2026-11-22 12:00+00') || ' / ' || tests.period_of('s', '2026-11-23 00:00+00'),
          '2026-10-23..2026-11-23 tts e3 q3500 d21000 c0.035 / ',
          'the same after the merge; a new period starts on Nov 23');

-- Ending the subscription brings back the calendar month at once.
select ok(tally.end_subscription('s', '2026-11-22 12:00+00'), 's cancels on Nov 22');
select is(tests.period_of('s', '2026-11-22 13:00+00') || ' / ' || tally.check_quota('s', 'tts', 500, '2026-11-22 13:00+00')
          || ' / ' || (select count(*) || ' drifted' from tally.verify() where drifted > 0),
          '2026-11-01..2026-12-01 tts e2 q2500 d14000 c0.025 / 0 / 0 drifted',
          'back on the free plan and the calendar month, and verify finds no drift');

-- k lives in Tokyo: a subscription at 20:00 UTC on Mar 30 starts on Mar 31 locally, so periods
-- start on the 31st or the last day of shorter months.
select lives_ok($$select tally.set_user_settings('k', 'Asia/Tokyo', 5)
                  union all select tally.start_subscription('k', 'pro', '2026-03-30 20:00+00')$$, 'k subscribes at 05:00 on Mar 31 in Tokyo');
select ok(tests.tts('k1', 'k', '2026-11-29 14:00+00', 100) and tests.tts('k2', 'k', '2026-11-29 16:00+00', 200),
          'k: 100 chars at 23:00 on Nov 29 and 200 at 01:00 on Nov 30, Tokyo time');
select is(tests.period_of('k', '2026-11-29 16:30+00') || ' / '
          || (select string_agg(format('%s..%s used=%s', f.period_start, f.period_end, f.used), ',')
                from tally.quota_forecast('k', 7, '2026-11-29 16:30+00') f),
          '2026-11-30..2026-12-31 tts e1 q200 d7000 c0.002 / 2026-11-30..2026-12-31 used=200',
          'k: 23:00 on Nov 29 in Tokyo is the old period, 01:00 on Nov 30 the new one, which runs to Dec 31 (period and forecast)');

select * from finish();
rollback;
