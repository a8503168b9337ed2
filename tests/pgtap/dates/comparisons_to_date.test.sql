-- Comparisons to date compare like with like: this period up to the moment asked against the previous one up
-- to the same local time (Monday morning, Sunday night, a month's first morning, Feb 29, Dec 31, daylight saving
-- days); when retention has dropped the raw log of a cut day, both sides stop at the start of their last day.
begin;
select plan(16);
set local timezone = 'UTC';

-- Comparisons as 'name cs..ce vs ps..pe: cur/prev d<delta> p<pct> trend' joined by ' | '.
create function tests.cmp_at(u text, p text, at timestamptz)
returns text language sql as $$
  select string_agg(format('%s %s..%s vs %s..%s: %s/%s d%s p%s %s', c.comparison, c.current_start, c.current_end,
                           c.previous_start, c.previous_end, trim_scale(c.current_value), trim_scale(c.previous_value),
                           trim_scale(c.delta), coalesce(c.delta_pct::text, '-'), c.trend), ' | ')
    from tally.usage_comparison(u, p, 'quantity', null, false, 5, at) c
$$;

-- The week of the report: last Monday's 1,260 chars were used at 14:00; this Monday at 08:00 nothing yet.
select ok(tests.tts('r1', 'rep', '2025-11-17 14:00+00', 1260), 'rep: 1,260 chars on Monday Nov 17 at 14:00');
select is(tests.cmp_at('rep', 'week', '2025-11-24 08:00+00'),
          'week 2025-11-24..2025-11-25 vs 2025-11-17..2025-11-18: 0/0 d0 p- stable',
          'Monday 08:00: nothing this week against nothing by 08:00 last Monday (not 0 against 1,260, -100%)');

-- wk: three weeks (Nov 10-16, 17-23, 24-30, 2025), with usage on both sides of the times asked.
select ok(tests.tts('a1', 'wk', '2025-11-10 10:00+00', 800) and tests.tts('a2', 'wk', '2025-11-16 23:30+00', 700)
      and tests.tts('b1', 'wk', '2025-11-17 07:00+00', 500) and tests.tts('b2', 'wk', '2025-11-17 14:00+00', 1260)
      and tests.tts('b3', 'wk', '2025-11-23 22:00+00', 100) and tests.tts('c1', 'wk', '2025-11-24 07:45+00', 450),
   'wk: usage in three weeks');
select is(tests.cmp_at('wk', 'week', '2025-11-24 08:00+00'),
          'week 2025-11-24..2025-11-25 vs 2025-11-17..2025-11-18: 450/500 d-50 p-10.0 down',
          'Monday morning: 450 by 08:00 against last Monday''s 500 by 08:00 (its 1,260 at 14:00 not yet)');
select is(tests.cmp_at('wk', 'week', '2025-11-23 23:00+00'),
          'week 2025-11-17..2025-11-24 vs 2025-11-10..2025-11-17: 1860/800 d1060 p132.5 up',
          'Sunday night 23:00: the week so far against last week up to Sunday 23:00 (700 at 23:30 not counted)');

-- A month's first morning: Dec 1, 2025 at 09:00 against Nov 1 up to 09:00.
select ok(tests.tts('m1', 'ms', '2025-11-01 08:00+00', 40) and tests.tts('m2', 'ms', '2025-11-01 15:00+00', 960)
      and tests.tts('m3', 'ms', '2025-12-01 08:30+00', 30), 'ms: Nov 1 and Dec 1');
select is(tests.cmp_at('ms', 'month', '2025-12-01 09:00+00'),
          'month 2025-12-01..2025-12-02 vs 2025-11-01..2025-11-02: 30/40 d-10 p-25.0 down',
          'month start: 30 by 09:00 against 40 by 09:00 on Nov 1 (not the whole day''s 1,000)');

-- Feb 29, 2024 at 23:30: the month against Jan 1-29 up to 23:30; the year against Jan 1-Feb 28, 2023 wholly
-- (2023 has no Feb 29); 5 chars at 23:40 are after the moment asked.
select ok(tests.tts('l1', 'leap', '2024-01-29 12:00+00', 10) and tests.tts('l2', 'leap', '2024-01-29 23:45+00', 77)
      and tests.tts('l3', 'leap', '2024-01-30 12:00+00', 500) and tests.tts('l4', 'leap', '2024-02-10 12:00+00', 100)
      and tests.tts('l5', 'leap', '2024-02-29 23:40+00', 5) and tests.tts('l6', 'leap', '2023-01-15 12:00+00', 1)
      and tests.tts('l7', 'leap', '2023-02-28 23:50+00', 300) and tests.tts('l8', 'leap', '2023-03-01 01:00+00', 999),
   'leap: usage around Feb 29, 2024 and Feb 28, 2023');
select is(tests.cmp_at('leap', 'month', '2024-02-29 23:30+00') || ' | ' || tests.cmp_at('leap', 'year', '2024-02-29 23:30+00'),
          'month 2024-02-01..2024-03-01 vs 2024-01-01..2024-01-30: 100/10 d90 p900.0 up | year 2024-01-01..2024-03-01 vs 2023-01-01..2023-03-01: 687/301 d386 p128.2 up',
          'Feb 29 23:30: month against Jan 1-29 23:30 (not 23:45), year against all of Jan 1-Feb 28, 2023');

-- Dec 31, 2025 at 23:30: the year against 2024 up to Dec 31 23:30; the month against all of November.
select ok(tests.tts('y1', 'ye', '2024-06-01 12:00+00', 1000) and tests.tts('y2', 'ye', '2024-12-31 23:45+00', 2000)
      and tests.tts('y3', 'ye', '2025-06-01 12:00+00', 1100) and tests.tts('y4', 'ye', '2025-11-30 23:59+00', 50)
      and tests.tts('y5', 'ye', '2025-12-15 12:00+00', 60) and tests.tts('y6', 'ye', '2025-12-31 23:50+00', 9),
   'ye: usage around two year ends');
select is(tests.cmp_at('ye', 'month', '2025-12-31 23:30+00') || ' | ' || tests.cmp_at('ye', 'year', '2025-12-31 23:30+00'),
          'month 2025-12-01..2026-01-01 vs 2025-11-01..2025-12-01: 60/50 d10 p20.0 up | year 2025-01-01..2026-01-01 vs 2024-01-01..2025-01-01: 1210/1000 d210 p21.0 up',
          'Dec 31 23:30: up to 23:30 on both sides of the year; November has no 31st, so all of it');

-- Daylight saving days count the same local time: Sunday Mar 9, 2025 at 12:00 in Los Angeles (a 23-hour day)
-- against Sunday Mar 2 at 12:00 PST, and Sunday Oct 26, 2025 at 12:00 in Berlin (25 hours) against Oct 19 at
-- 12:00 CEST: 11:30 counts on both sides, 12:30 on neither.
select lives_ok($$select tally.set_user_settings('la', 'America/Los_Angeles') union all select tally.set_user_settings('be', 'Europe/Berlin')$$,
                'la lives in Los Angeles, be in Berlin');
select ok(tests.tts('d1', 'la', '2025-03-02 19:30+00', 70) and tests.tts('d2', 'la', '2025-03-02 20:30+00', 700)
      and tests.tts('d3', 'la', '2025-03-09 18:30+00', 80) and tests.tts('d4', 'la', '2025-03-09 19:30+00', 5)
      and tests.tts('e1', 'be', '2025-10-19 09:30+00', 30) and tests.tts('e2', 'be', '2025-10-19 10:30+00', 300)
      and tests.tts('e3', 'be', '2025-10-26 10:30+00', 33) and tests.tts('e4', 'be', '2025-10-26 11:30+00', 3),
   'la and be: usage at 11:30 and 12:30 local on two Sundays');
select is(tests.cmp_at('la', 'week', '2025-03-09 19:00+00') || ' | ' || tests.cmp_at('be', 'week', '2025-10-26 11:00+00'),
          'week 2025-03-03..2025-03-10 vs 2025-02-24..2025-03-03: 80/70 d10 p14.3 up | week 2025-10-20..2025-10-27 vs 2025-10-13..2025-10-20: 33/30 d3 p10.0 up',
          'daylight saving days: the same local time a week earlier, not the same number of hours');

-- Retention drops the raw log of November 2025 (the rollups stay): the cut days can no longer be cut, so
-- both sides stop at the start of their last day.
select ok(tally.ensure_partitions('2025-11-01', '2025-11-01') >= 0
          and (select count(*) from tally.apply_retention('1 day') where range_start = '2025-11-01') = 1,
          'the raw log of November 2025 is dropped');
select is(tests.cmp_at('wk', 'week', '2025-11-23 23:00+00'),
          'week 2025-11-17..2025-11-23 vs 2025-11-10..2025-11-16: 1760/800 d960 p120.0 up',
          'Sunday night without the raw log: Monday to Saturday against Monday to Saturday');

select * from finish();
rollback;
