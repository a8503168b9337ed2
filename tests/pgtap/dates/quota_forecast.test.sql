-- The forecast projects the rest of today too: on the last day of a billing period (Oct 31, Feb 28 and 29, the
-- day before an anchor on the 29th, 30th or 31st in a short month) projected usage is more than what is used,
-- and on a daylight saving day the rest of today is measured by the day's real length (23 or 25 hours).
begin;
select plan(10);
set local timezone = 'UTC';

create function tests.fc_at(u text, k text, at timestamptz)
returns text language sql as $$
  select format('%s..%s used=%s quota=%s rate=%s proj=%s on=%s %s', f.period_start, f.period_end, f.used,
                coalesce(f.quota::text, '-'), f.run_rate, f.projected, coalesce(f.reaches_limit_on::text, '-'), f.status)
    from tally.quota_forecast(u, 7, at) f
   where f.kind = k
$$;

-- Records n events of a kind, one a day at the same time, from the first moment on.
create function tests.daily(prefix text, u text, k text, first timestamptz, n integer, q bigint)
returns boolean language sql as $$
  select bool_and(tally.record_usage(prefix || d, u, k, q, first + d * interval '1 day'))
    from generate_series(0, n - 1) d
$$;

select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 1000000, "ocr": 5000}', true)$$,
                'free plan: 5,000 ocr pages, a million tts chars');

-- Oct 31, 2025 at 18:00 UTC, the last day of a 31-day month: 700 pages a day for 7 days, 4,900 used; the rest of
-- today (6 h = 0.25 day) projects 175 more, which crosses the 5,000 limit today.
select ok(tests.daily('q', 'q31', 'ocr', '2025-10-25 10:00+00', 7, 700), 'q31: 700 pages a day, Oct 25-31');
select is(tests.fc_at('q31', 'ocr', '2025-10-31 18:00+00'),
          '2025-10-01..2025-11-01 used=4900 quota=5000 rate=700.00 proj=5075 on=2025-10-31 will_reach',
          'last day of October: 4,900 + 700 * 0.25 = 5,075 (not 4,900), and the limit is reached today');

-- Feb 28, 2025 at 06:00 (0.75 day left) and Feb 29, 2024 at 12:00 (0.5 day left): 400 chars a day.
select ok(tests.daily('f', 'f28', 'tts', '2025-02-22 03:00+00', 7, 400) and tests.daily('g', 'f29', 'tts', '2024-02-23 03:00+00', 7, 400),
          'f28 and f29: 400 chars a day for the last 7 days of February');
select is(tests.fc_at('f28', 'tts', '2025-02-28 06:00+00') || ' | ' || tests.fc_at('f29', 'tts', '2024-02-29 12:00+00'),
          '2025-02-01..2025-03-01 used=2800 quota=1000000 rate=400.00 proj=3100 on=- ok | 2024-02-01..2024-03-01 used=2800 quota=1000000 rate=400.00 proj=3000 on=- ok',
          'Feb 28, 2025 at 06:00: 2,800 + 400 * 0.75; Feb 29, 2024 at 12:00: 2,800 + 400 * 0.5');

-- Subscriptions started on the 29th, 30th and 31st anchor the periods there: the period's last day is Feb 27,
-- 2025 (anchor 29 or 31: the next period starts on Feb 28, the month's last day) or Feb 28, 2024 (anchor 30:
-- the next one starts on Feb 29).
select lives_ok($$select tally.upsert_plan('pro', 1, 10, '{"tts": 1000000, "ocr": 5000}')
                  union all select tally.start_subscription('a29', 'pro', '2025-01-29 10:00+00')
                  union all select tally.start_subscription('a30', 'pro', '2024-01-30 10:00+00')
                  union all select tally.start_subscription('a31', 'pro', '2025-01-31 10:00+00')$$,
                'a29, a30 and a31 subscribe on a 29th, a 30th and a 31st');
select ok(tests.daily('h', 'a29', 'tts', '2025-02-21 03:00+00', 7, 400) and tests.daily('i', 'a30', 'tts', '2024-02-22 03:00+00', 7, 400)
          and tests.daily('j', 'a31', 'tts', '2025-02-21 03:00+00', 8, 400), '400 chars a day up to the last day of the period (a31: and the next day)');
select is(tests.fc_at('a29', 'tts', '2025-02-27 12:00+00') || ' | ' || tests.fc_at('a30', 'tts', '2024-02-28 12:00+00')
          || ' | ' || tests.fc_at('a31', 'tts', '2025-02-27 12:00+00') || ' | ' || tests.fc_at('a31', 'tts', '2025-02-28 12:00+00'),
          '2025-01-29..2025-02-28 used=2800 quota=1000000 rate=400.00 proj=3000 on=- ok | 2024-01-30..2024-02-29 used=2800 quota=1000000 rate=400.00 proj=3000 on=- ok | 2025-01-31..2025-02-28 used=2800 quota=1000000 rate=400.00 proj=3000 on=- ok | 2025-02-28..2025-03-31 used=400 quota=1000000 rate=400.00 proj=12600 on=- ok',
          'the last day of a period anchored on the 29th, 30th or 31st projects its rest; the next period 30.5 days');

-- Daylight saving days in the user's zone, at 12:00 local: Mar 9, 2025 in Los Angeles (23 h, 12 h left:
-- 12/23 day) and Mar 30, 2025 in Berlin (23 h, 12/23), 2,300 a day; Nov 2, 2025 in Los Angeles (25 h, 12/25),
-- 2,500 a day.
select lives_ok($$select tally.set_user_settings('la1', 'America/Los_Angeles') union all select tally.set_user_settings('la2', 'America/Los_Angeles')
                  union all select tally.set_user_settings('be1', 'Europe/Berlin')$$, 'la1 and la2 in Los Angeles, be1 in Berlin');
select is((select bool_and(x) from (values (tests.daily('k', 'la1', 'tts', '2025-03-03 18:00+00', 7, 2300)),
                                            (tests.daily('l', 'la2', 'tts', '2025-10-27 19:00+00', 7, 2500)),
                                            (tests.daily('m', 'be1', 'tts', '2025-03-24 09:00+00', 7, 2300))) as v(x))
          and tests.fc_at('la1', 'tts', '2025-03-09 19:00+00') || ' | ' || tests.fc_at('la2', 'tts', '2025-11-02 20:00+00')
              || ' | ' || tests.fc_at('be1', 'tts', '2025-03-30 10:00+00')
              = '2025-03-01..2025-04-01 used=16100 quota=1000000 rate=2300.00 proj=67900 on=- ok | 2025-11-01..2025-12-01 used=5000 quota=1000000 rate=2500.00 proj=76200 on=- ok | 2025-03-01..2025-04-01 used=16100 quota=1000000 rate=2300.00 proj=19600 on=- ok',
          true, 'Mar 9 LA: 16,100 + 2,300 * (22 + 12/23); Nov 2 LA: 5,000 + 2,500 * (28 + 12/25); Mar 30 Berlin: 16,100 + 2,300 * (1 + 12/23)');

select * from finish();
rollback;
