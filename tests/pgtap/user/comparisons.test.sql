-- Comparisons: week/month/year over the previous one, to date (same dates one period earlier) or complete
-- periods; deltas, % (NULL when previous is 0), trend with the 5% stable band; leap day; peak bucket of a range.
begin;
select plan(18);
set local timezone = 'UTC';

-- Comparisons as 'name cs..ce vs ps..pe: cur/prev d<delta> p<pct> trend' joined by ' | '.
create function tests.cmp(u text, p text, metric text default 'quantity', k text default null, complete boolean default false,
                          at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select string_agg(format('%s %s..%s vs %s..%s: %s/%s d%s p%s %s', c.comparison, c.current_start, c.current_end,
                           c.previous_start, c.previous_end, trim_scale(c.current_value), trim_scale(c.previous_value),
                           trim_scale(c.delta), coalesce(c.delta_pct::text, '-'), c.trend), ' | ')
    from tally.usage_comparison(u, p, metric, k, complete, 5, at) c
$$;

create function tests.peak(u text, r text, b text, k text default null, at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select coalesce((select format('%s..%s %s', p.bucket_start, p.bucket_end, trim_scale(p.value))
                     from tally.usage_peak(u, r, b, 'quantity', k, null, null, at) p), 'none')
$$;

select is(tests.cmp('nobody', null),
          'week 2026-11-16..2026-11-22 vs 2026-11-09..2026-11-15: 0/0 d0 p- stable | month 2026-11-01..2026-11-22 vs 2026-10-01..2026-10-22: 0/0 d0 p- stable | year 2026-01-01..2026-11-22 vs 2025-01-01..2025-11-22: 0/0 d0 p- stable',
          'empty user: zeros, no %, stable; to date compares the same dates one period earlier (ends exclusive)');
select is(tests.peak('nobody', '12m', 'month'), 'none', 'empty user: no peak');

-- c: Saturday Nov 21, 2026 is "today".
select ok(tests.tts('w1', 'c', '2026-11-17 10:00+00', 100) and tests.tts('w0', 'c', '2026-11-10 10:00+00', 80)
      and tally.record_usage('o1', 'c', 'ocr', 5, '2026-11-18 10:00+00')
      and tests.tts('m1', 'c', '2026-11-02 10:00+00', 300) and tests.tts('m0', 'c', '2026-10-05 10:00+00', 400)
      and tests.tts('m9', 'c', '2026-10-25 10:00+00', 1000) and tests.tts('y0', 'c', '2025-06-01 10:00+00', 1850)
      and tests.tts('y9', 'c', '2025-12-01 10:00+00', 5000),
   'c: usage this and last week, month and year');
-- c used tts (characters) and ocr (pages): their quantities add up to no number, so the
-- comparison of the quantity of all kinds is refused.
select is(tests.error_of($$select tests.cmp('c', null)$$) like 'PT011:%units%', true,
          'c, all kinds of two units: the quantity comparison is refused');
-- The checks below are about the comparison's dates and arithmetic over several kinds: count OCR
-- in characters here so that all kinds share one unit (mixed units: tests/pgtap/user/kinds.test.sql).
select tally.declare_kind('ocr', 'characters', 'OCR');
select is(tests.cmp('c', null),
          'week 2026-11-16..2026-11-22 vs 2026-11-09..2026-11-15: 105/80 d25 p31.3 up | month 2026-11-01..2026-11-22 vs 2026-10-01..2026-10-22: 485/400 d85 p21.3 up | year 2026-01-01..2026-11-22 vs 2025-01-01..2025-11-22: 1885/1850 d35 p1.9 stable',
          'c, all kinds: +31.3% week, +21.3% month, +1.9% year is stable (pending)');
select is(tests.cmp('c', 'week', 'quantity', 'tts') || ' | ' || tests.cmp('c', 'month', 'quantity', 'tts'),
          'week 2026-11-16..2026-11-22 vs 2026-11-09..2026-11-15: 100/80 d20 p25.0 up | month 2026-11-01..2026-11-22 vs 2026-10-01..2026-10-22: 480/400 d80 p20.0 up',
          'c, tts only');
select is(tests.cmp('c', 'week', 'events', 'tts'),
          'week 2026-11-16..2026-11-22 vs 2026-11-09..2026-11-15: 1/1 d0 p0.0 stable', 'c: the events metric');
select is(tests.cmp('c', null, 'quantity', null, true),
          'week 2026-11-09..2026-11-16 vs 2026-11-02..2026-11-09: 80/300 d-220 p-73.3 down | month 2026-10-01..2026-11-01 vs 2026-09-01..2026-10-01: 1400/0 d1400 p- up | year 2025-01-01..2026-01-01 vs 2024-01-01..2025-01-01: 6850/0 d6850 p- up',
          'c, complete periods: last week down 73.3%, October up from nothing (no %)');
select is(tests.peak('c', '12m', 'month') || ' / ' || tests.peak('c', '30d', 'day') || ' / ' || tests.peak('c', '12m', 'week', 'ocr'),
          '2025-12-01..2026-01-01 5000 / 2026-10-25..2026-10-26 1000 / 2026-11-16..2026-11-23 5',
          'c: peak month, day and week (ocr only)');
select is(tally.merge_pending(), 8, 'merge folds the eight deltas');
select is(tests.cmp('c', null),
          'week 2026-11-16..2026-11-22 vs 2026-11-09..2026-11-15: 105/80 d25 p31.3 up | month 2026-11-01..2026-11-22 vs 2026-10-01..2026-10-22: 485/400 d85 p21.3 up | year 2026-01-01..2026-11-22 vs 2025-01-01..2025-11-22: 1885/1850 d35 p1.9 stable',
          'c: the same after the merge');
-- A late event (pending) on Nov 9 turns the complete week comparison around.
select ok(tests.tts('w9', 'c', '2026-11-09 10:00+00', 20), 'c: a late event on Monday Nov 9');
select is(tests.cmp('c', 'week', 'quantity', null, true),
          'week 2026-11-09..2026-11-16 vs 2026-11-02..2026-11-09: 100/300 d-200 p-66.7 down', 'c: merged + pending');
select is(tests.peak('c', '7d', 'day', null, '2026-11-21 12:00+00'), '2026-11-17..2026-11-18 100', 'c: peak day of the last 7');

-- Leap day: Feb 29, 2024 against Feb 28, 2023 (the same date one year earlier, clamped), and month ends.
select ok(tests.tts('l0', 'leap', '2024-02-29 12:00+00', 10) and tests.tts('l1', 'leap', '2023-02-28 12:00+00', 10)
      and tests.tts('l2', 'leap', '2023-03-01 12:00+00', 99) and tests.tts('l3', 'leap', '2024-01-29 12:00+00', 7)
      and tests.tts('l4', 'leap', '2024-01-30 12:00+00', 1000), 'leap: usage around Feb 29');
select is(tests.cmp('leap', null, 'quantity', null, false, '2024-02-29 12:00+00'),
          'week 2024-02-26..2024-03-01 vs 2024-02-19..2024-02-23: 10/0 d10 p- up | month 2024-02-01..2024-03-01 vs 2024-01-01..2024-01-30: 10/7 d3 p42.9 up | year 2024-01-01..2024-03-01 vs 2023-01-01..2023-03-01: 1017/10 d1007 p10070.0 up',
          'leap: Feb 29 compares with Jan 1..29 (not Jan 30) and with Jan 1..Feb 28, 2023 (not Mar 1)');
-- Threshold: a change under 5% is stable, 5% or more is a trend.
select ok(tests.tts('s1', 'st', '2026-11-16 10:00+00', 1049) and tests.tts('s0', 'st', '2026-11-09 10:00+00', 1000),
          'st: +4.9% week over week');
select is((select string_agg(format('%s:%s', x.th, c.trend), ' ' order by x.th)
             from (values (4.8), (4.9), (5.0)) as x(th)
            cross join lateral tally.usage_comparison('st', 'week', 'quantity', null, false, x.th, '2026-11-21 12:00+00') c),
          '4.8:up 4.9:up 5.0:stable', 'the trend is stable while |delta %| is below the threshold');

select * from finish();
rollback;
