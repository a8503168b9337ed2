-- Daily trend series per kind (zero-filled) and DAU, WAU, MAU, new users per UTC day, from a hand-built October: a
-- failure-only day, a Tokyo user whose UTC evening is the next local day (platform figures keep the UTC day), a reversed payment;
-- paying users per UTC day and 7 and 30 days from hand-built subscriptions (paid, free, ended at midnight, a plan change).
begin;
select plan(12);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

create function tests.trend_of(dimension text, only_values text[], from_day date, to_day date)
returns text language sql as $$
  select coalesce(string_agg(format('%s %s e%s f%s q%s u%s', t.value, to_char(t.day, 'MM-DD'), t.events, t.failures,
                                    t.quantity, t.users), ' | '), '')
    from tally.admin_trend(dimension, only_values, from_day, to_day) t
$$;
create function tests.activity_on(days date[])
returns text language sql as $$
  select string_agg(format('%s dau%s wau%s mau%s new%s pay%s/%s/%s ok%s fail%s', to_char(a.day, 'MM-DD'), a.dau, a.wau,
                           a.mau, a.new_users, a.paying_users, a.paying_users_7d, a.paying_users_30d, a.succeeded, a.failed),
                    ' | ' order by a.day)
    from tally.admin_active_users('2026-09-01', '2026-12-31') a
   where a.day = any (days)
$$;

select lives_ok($$select tally.set_user_settings('u3', 'Asia/Tokyo')$$, 'u3 lives in Tokyo');
-- u1 pays on Oct 1, 3 and 20. u2 fails on Oct 2, then OCRs a free page on Oct 9.
-- u3 pays at 20:00 UTC on Oct 4 (Oct 5 in Tokyo: still Oct 4 for the platform). u4 pays on Oct 5, refunded (reversed)
-- the same day.
select ok(tests.tts('a1', 'u1', '2026-10-01 10:00+00', 100)
      and tests.tts('a2', 'u1', '2026-10-03 10:00+00', 200)
      and tests.tts('a3', 'u1', '2026-10-20 10:00+00', 50)
      and tests.tts('f1', 'u2', '2026-10-02 10:00+00', 40, status => 'failed')
      and tally.record_usage('o1', 'u2', 'ocr', 1, '2026-10-09 10:00+00', duration_ms => 2000)
      and tests.tts('j1', 'u3', '2026-10-04 20:00+00', 300)
      and tests.tts('r1', 'u4', '2026-10-05 09:00+00', 100)
      and tally.reverse_usage('u4', 'r1', 'r1-refund'), 'eight events recorded');
select ok(tally.merge_pending() = 8 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

-- Paying users come from the subscriptions, not from usage (UTC days; a subscription runs over [started_at, ended_at)):
-- u1: pro from Oct 1 12:00 to Oct 3 00:00 (Oct 1-2), pro again from Oct 20 (still running).
-- u2: pro from Oct 8 10:00, changed to free on Oct 9 10:00 (Oct 8-9).
-- u3: pro from Oct 4 20:00 to Oct 5 08:00 (Oct 4-5).  u4: free from Oct 1 (never pays).
-- u5, who never used anything: pro from Sep 1 to Oct 2 00:00:01 (through Oct 2).
select lives_ok($$select tally.upsert_plan('free', 0, 0, '{}', true), tally.upsert_plan('pro', 1, 10)$$, 'plans free and pro');
select lives_ok($$
  select tally.start_subscription('u1', 'pro', '2026-10-01 12:00+00'), tally.end_subscription('u1', '2026-10-03 00:00+00'),
         tally.start_subscription('u1', 'pro', '2026-10-20 10:00+00'),
         tally.start_subscription('u2', 'pro', '2026-10-08 10:00+00'), tally.start_subscription('u2', 'free', '2026-10-09 10:00+00'),
         tally.start_subscription('u3', 'pro', '2026-10-04 20:00+00'), tally.end_subscription('u3', '2026-10-05 08:00+00'),
         tally.start_subscription('u4', 'free', '2026-10-01 00:00+00'),
         tally.start_subscription('u5', 'pro', '2026-09-01 00:00+00'), tally.end_subscription('u5', '2026-10-02 00:00:01+00')
$$, 'subscriptions of five users');

select is(tests.trend_of('kind', '{tts,ocr}', '2026-10-01', '2026-10-05'),
          'ocr 10-01 e0 f0 q0 u0 | ocr 10-02 e0 f0 q0 u0 | ocr 10-03 e0 f0 q0 u0 | ocr 10-04 e0 f0 q0 u0 | ocr 10-05 e0 f0 q0 u0 | '
          'tts 10-01 e1 f0 q100 u1 | tts 10-02 e0 f1 q0 u1 | tts 10-03 e1 f0 q200 u1 | tts 10-04 e1 f0 q300 u1 | tts 10-05 e0 f0 q0 u1',
          'events per UTC day of chosen kinds, zero-filled; u3 on Oct 4 (UTC, though Oct 5 in Tokyo); u4''s reversed block nets to 0 but u4 was active');
select is(tests.trend_of('kind', null, '2026-10-08', '2026-10-10'),
          'ocr 10-08 e0 f0 q0 u0 | ocr 10-09 e1 f0 q1 u1 | ocr 10-10 e0 f0 q0 u0',
          'without only_values: every value active in the range');
select is(tests.activity_on('{2026-10-01,2026-10-02,2026-10-03,2026-10-04,2026-10-05}'),
          '10-01 dau1 wau1 mau1 new1 pay2/2/2 ok1 fail0 | 10-02 dau1 wau2 mau2 new1 pay2/2/2 ok0 fail1 | '
          '10-03 dau1 wau2 mau2 new0 pay0/2/2 ok1 fail0 | 10-04 dau1 wau3 mau3 new1 pay1/3/3 ok1 fail0 | '
          '10-05 dau1 wau4 mau4 new1 pay1/3/3 ok1 fail0',
          'first week: a failure makes u2 active; paying: u1 and u5 (no usage) on Oct 1-2, u1''s end at midnight leaves Oct 3, '
          'u3''s night counts on Oct 4 and 5');
select is(tests.activity_on('{2026-10-08,2026-10-09,2026-10-10,2026-10-12,2026-10-20}'),
          '10-08 dau0 wau4 mau4 new0 pay1/4/4 ok0 fail0 | 10-09 dau1 wau4 mau4 new0 pay1/2/4 ok1 fail0 | '
          '10-10 dau0 wau3 mau4 new0 pay0/2/4 ok0 fail0 | 10-12 dau0 wau1 mau4 new0 pay0/1/4 ok0 fail0 | '
          '10-20 dau1 wau1 mau4 new0 pay1/1/4 ok1 fail0',
          'rolling 7-day windows drop users exactly 7 days after their last activity (or paid day); u2 pays until its change to free');
select is(tests.activity_on('{2026-11-01,2026-11-02,2026-11-04,2026-11-18,2026-11-19}'),
          '11-01 dau0 wau0 mau4 new0 pay1/1/3 ok0 fail0 | 11-02 dau0 wau0 mau4 new0 pay1/1/3 ok0 fail0 | '
          '11-04 dau0 wau0 mau2 new0 pay1/1/2 ok0 fail0 | 11-18 dau0 wau0 mau1 new0 pay1/1/1 ok0 fail0 | '
          '11-19 dau0 wau0 mau0 new0 pay1/1/1 ok0 fail0',
          'MAU counts users active in the 30 days ending each day, zero-filled after the last activity');
select is((select count(*)::int from tally.admin_active_users('2026-10-01', '2026-10-31')), 31,
          'one row per day of the range');

select * from finish();
rollback;
