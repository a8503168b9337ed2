-- Daily trend series per kind (zero-filled) and DAU, WAU, MAU, new and paying users per day, in users' local days,
-- from a hand-built October: a failure-only day, a Tokyo user whose UTC evening is the next local day, a reversed payment.
begin;
select plan(10);

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
-- u3 pays at 20:00 UTC on Oct 4 = Oct 5 in Tokyo. u4 pays on Oct 5, refunded (reversed) the same day.
select ok(tests.tts('a1', 'u1', '2026-10-01 10:00+00', 100)
      and tests.tts('a2', 'u1', '2026-10-03 10:00+00', 200)
      and tests.tts('a3', 'u1', '2026-10-20 10:00+00', 50)
      and tests.tts('f1', 'u2', '2026-10-02 10:00+00', 40, status => 'failed')
      and tally.record_usage('o1', 'u2', 'ocr', 1, '2026-10-09 10:00+00', duration_ms => 2000)
      and tests.tts('j1', 'u3', '2026-10-04 20:00+00', 300)
      and tests.tts('r1', 'u4', '2026-10-05 09:00+00', 100)
      and tally.reverse_usage('r1', 'r1-refund'), 'eight events recorded');
select ok(tally.merge_pending() = 8 and (select count(*) = 9 from tally.refresh_analytics()), 'merged and refreshed');

select is(tests.trend_of('kind', '{tts,ocr}', '2026-10-01', '2026-10-05'),
          'ocr 10-01 e0 f0 q0 u0 | ocr 10-02 e0 f0 q0 u0 | ocr 10-03 e0 f0 q0 u0 | ocr 10-04 e0 f0 q0 u0 | ocr 10-05 e0 f0 q0 u0 | '
          'tts 10-01 e1 f0 q100 u1 | tts 10-02 e0 f1 q0 u1 | tts 10-03 e1 f0 q200 u1 | tts 10-04 e0 f0 q0 u0 | tts 10-05 e1 f0 q300 u2',
          'events per day of chosen kinds, zero-filled; u3 on Oct 5 (Tokyo); u4''s reversed block nets to 0 but u4 was active');
select is(tests.trend_of('kind', null, '2026-10-08', '2026-10-10'),
          'ocr 10-08 e0 f0 q0 u0 | ocr 10-09 e1 f0 q1 u1 | ocr 10-10 e0 f0 q0 u0',
          'without only_values: every value active in the range');
select is(tests.activity_on('{2026-10-01,2026-10-02,2026-10-03,2026-10-04,2026-10-05}'),
          '10-01 dau1 wau1 mau1 new1 pay1/1/1 ok1 fail0 | 10-02 dau1 wau2 mau2 new1 pay0/1/1 ok0 fail1 | '
          '10-03 dau1 wau2 mau2 new0 pay1/1/1 ok1 fail0 | 10-04 dau0 wau2 mau2 new0 pay0/1/1 ok0 fail0 | '
          '10-05 dau2 wau4 mau4 new2 pay1/2/2 ok2 fail0',
          'first week: a failure makes u2 active (not paying); u4''s refund makes u4 active but not paying');
select is(tests.activity_on('{2026-10-08,2026-10-09,2026-10-10,2026-10-12,2026-10-20}'),
          '10-08 dau0 wau4 mau4 new0 pay0/2/2 ok0 fail0 | 10-09 dau1 wau4 mau4 new0 pay0/2/2 ok1 fail0 | '
          '10-10 dau0 wau3 mau4 new0 pay0/1/2 ok0 fail0 | 10-12 dau0 wau1 mau4 new0 pay0/0/2 ok0 fail0 | '
          '10-20 dau1 wau1 mau4 new0 pay1/1/2 ok1 fail0',
          'rolling 7-day windows drop users exactly 7 days after their last activity');
select is(tests.activity_on('{2026-11-01,2026-11-02,2026-11-04,2026-11-18,2026-11-19}'),
          '11-01 dau0 wau0 mau4 new0 pay0/0/2 ok0 fail0 | 11-02 dau0 wau0 mau4 new0 pay0/0/2 ok0 fail0 | '
          '11-04 dau0 wau0 mau2 new0 pay0/0/1 ok0 fail0 | 11-18 dau0 wau0 mau1 new0 pay0/0/1 ok0 fail0 | '
          '11-19 dau0 wau0 mau0 new0 pay0/0/0 ok0 fail0',
          'MAU counts users active in the 30 days ending each day, zero-filled after the last activity');
select is((select count(*)::int from tally.admin_active_users('2026-10-01', '2026-10-31')), 31,
          'one row per day of the range');

select * from finish();
rollback;
