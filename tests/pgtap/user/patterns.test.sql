-- Patterns: weekday distribution, hour-of-week heatmap (local time, DST), calendar heatmap of a year
-- (every day, leap year, levels), monthly summaries (every month, year boundary, top kind); before and after a merge.
begin;
select plan(18);
set local timezone = 'UTC';

create function tests.weekdays(u text, f date default null, t date default null)
returns text language sql as $$
  select string_agg(format('%s:%s/%s/%s%%', left(w.day_name, 2), w.active_days, w.quantity, w.share_pct), ' ' order by w.weekday)
    from tally.weekday_distribution(u, f, t, '2026-11-21 12:00+00') w
$$;

create function tests.hours(u text)
returns text language sql as $$
  select format('%s cells: %s', count(*), coalesce(string_agg(format('%s=d%sh%s:e%s/q%s', h.how, h.weekday, h.hour, h.events, h.quantity), ' '
                                                               order by h.how) filter (where h.events <> 0 or h.quantity <> 0), '-'))
    from tally.hour_of_week_heatmap(u) h
$$;

create function tests.calendar(u text, y integer)
returns text language sql as $$
  select format('%s days %s..%s: %s', count(*), min(c.day), max(c.day),
                coalesce(string_agg(format('%s:%s/L%s', c.day, c.quantity, c.level), ' ' order by c.day)
                           filter (where c.events <> 0 or c.quantity <> 0), '-'))
    from tally.calendar_heatmap(u, y, '2026-11-21 12:00+00') c
$$;

create function tests.months(u text, n integer, at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select string_agg(format('%s:e%s/q%s/a%s/%s', m.month_start, m.events, m.quantity, m.active_days, coalesce(m.top_kind, '-')), ' '
                    order by m.month_start)
    from tally.monthly_summaries(u, n, at) m
$$;

select is(tests.weekdays('nobody'), 'Mo:0/0/0% Tu:0/0/0% We:0/0/0% Th:0/0/0% Fr:0/0/0% Sa:0/0/0% Su:0/0/0%',
          'empty user: all seven weekdays with zeros');
select is(tests.hours('nobody'), '168 cells: -', 'empty user: 168 empty hours');
select is(tests.calendar('nobody', 2026), '365 days 2026-01-01..2026-12-31: -', 'empty user: every day of 2026');
select is(tests.months('nobody', 3), '2026-09-01:e0/q0/a0/- 2026-10-01:e0/q0/a0/- 2026-11-01:e0/q0/a0/-',
          'empty user: three empty months');

-- u (UTC). Mon Nov 16 (2 events), Tue Nov 17, Sat Nov 21; leap day Thu Feb 29, 2024; New Year.
select ok(tests.tts('a1', 'u', '2026-11-16 08:15+00', 100) and tests.tts('a2', 'u', '2026-11-16 08:45+00', 100)
      and tests.tts('a3', 'u', '2026-11-17 23:30+00', 300) and tally.record_usage('a4', 'u', 'ocr', 2, '2026-11-21 00:10+00')
      and tally.record_usage('a5', 'u', 'ocr', 3, '2026-11-21 10:00+00')
      and tests.tts('b1', 'u', '2024-02-29 12:00+00', 50) and tests.tts('b2', 'u', '2024-12-31 23:00+00', 60)
      and tests.tts('b3', 'u', '2025-01-01 00:30+00', 70)
      and tests.tts('b4', 'u', '2025-12-15 12:00+00', 40) and tests.tts('b5', 'u', '2026-01-05 12:00+00', 30),
   'u: ten events');
select is(tests.weekdays('u', '2026-11-01'), 'Mo:1//40.0% Tu:1//20.0% We:0//0.0% Th:0//0.0% Fr:0//0.0% Sa:1//40.0% Su:0//0.0%',
          'u in November: Monday has two events, Saturday two OCR events; shares of events (pending)');
select is(tests.weekdays('u'), 'Mo:3//40.0% Tu:2//20.0% We:1//10.0% Th:1//10.0% Fr:0//0.0% Sa:1//20.0% Su:0//0.0%',
          'u, all history: the leap day was a Thursday, New Year 2025 a Wednesday');
select is(tests.hours('u'),
          '168 cells: 8=d1h8:e2/q 12=d1h12:e2/q 47=d2h23:e2/q 48=d3h0:e1/q 84=d4h12:e1/q 120=d6h0:e1/q 130=d6h10:e1/q',
          'u: hour of the week in UTC (Monday 08:00 is 8, Thursday Feb 29 12:00 is 84, Saturday 10:00 is 130) (pending)');
select is(tests.calendar('u', 2024), '366 days 2024-01-01..2024-12-31: 2024-02-29:/L4 2024-12-31:/L4',
          'u: 2024 has 366 days, Feb 29 among them; levels are quartiles of the active days');
select is(tests.calendar('u', 2026), '365 days 2026-01-01..2026-12-31: 2026-01-05:/L2 2026-11-16:/L4 2026-11-17:/L2 2026-11-21:/L4',
          'u: 2026, levels 1-4 by quartile of quantity among the active days');
select is(tests.months('u', 12),
          '2025-12-01:e1/q/a1/tts 2026-01-01:e1/q/a1/tts 2026-02-01:e0/q/a0/- 2026-03-01:e0/q/a0/- 2026-04-01:e0/q/a0/- 2026-05-01:e0/q/a0/- 2026-06-01:e0/q/a0/- 2026-07-01:e0/q/a0/- 2026-08-01:e0/q/a0/- 2026-09-01:e0/q/a0/- 2026-10-01:e0/q/a0/- 2026-11-01:e5/q/a3/tts',
          'u: twelve months across the year boundary, every month present');

-- la: Los Angeles local hours; Sunday Nov 1, 2026 is the fall-back day (01:30 happens twice).
select lives_ok($$select tally.set_user_settings('la', 'America/Los_Angeles')$$, 'la lives in Los Angeles');
select ok(tests.tts('l1', 'la', '2026-11-01 08:30+00', 1) and tests.tts('l2', 'la', '2026-11-01 09:30+00', 2)
      and tests.tts('l3', 'la', '2026-11-02 07:30+00', 4) and tests.tts('l4', 'la', '2026-11-02 08:30+00', 8),
   'la: both 01:30s of Sunday Nov 1, 23:30 PST Sunday and 00:30 PST Monday');
select is(tests.hours('la') || ' / ' || tests.weekdays('la'),
          '168 cells: 0=d1h0:e1/q8 145=d7h1:e2/q3 167=d7h23:e1/q4 / Mo:1/8/25.0% Tu:0/0/0.0% We:0/0/0.0% Th:0/0/0.0% Fr:0/0/0.0% Sa:0/0/0.0% Su:1/7/75.0%',
          'la: local hours of the week and weekdays (pending)');
select is(tally.merge_pending(), 14, 'merge folds the fourteen deltas');
select is(tests.hours('la') || ' / ' || tests.weekdays('la'),
          '168 cells: 0=d1h0:e1/q8 145=d7h1:e2/q3 167=d7h23:e1/q4 / Mo:1/8/25.0% Tu:0/0/0.0% We:0/0/0.0% Th:0/0/0.0% Fr:0/0/0.0% Sa:0/0/0.0% Su:1/7/75.0%',
          'la: the same after the merge');
select ok(tests.tts('a6', 'u', '2026-11-16 08:59+00', 1), 'u: a late Monday event (pending, the rest merged)');
select is(tests.hours('u') || ' / ' || tests.calendar('u', 2026) || ' / ' || tests.months('u', 2),
          '168 cells: 8=d1h8:e3/q 12=d1h12:e2/q 47=d2h23:e2/q 48=d3h0:e1/q 84=d4h12:e1/q 120=d6h0:e1/q 130=d6h10:e1/q / 365 days 2026-01-01..2026-12-31: 2026-01-05:/L2 2026-11-16:/L4 2026-11-17:/L2 2026-11-21:/L3 / 2026-10-01:e0/q/a0/- 2026-11-01:e6/q/a3/tts',
          'u: merged + pending');

select * from finish();
rollback;
