-- History: ranges 7d/30d/3m/12m and custom, day/week/month buckets in local time (weeks start on Monday),
-- zero-filled, stacked by a dimension; month and year boundaries, the leap day, DST and two time zones.
begin;
select plan(25);
set local timezone = 'UTC';

-- History as 'bucket_start[/value]:quantity' joined by spaces.
create function tests.hist(u text, r text, b text, dim text default null, f date default null, t date default null,
                           at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select string_agg(format('%s%s:%s', h.bucket_start, coalesce('/' || h.value, ''), h.quantity), ' '
                    order by h.bucket_start, h.value)
    from tally.usage_history(u, r, b, dim, f, t, at) h
$$;

-- Only the non-zero buckets, and the number of buckets.
create function tests.hist_nz(u text, r text, b text, at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select format('%s buckets: %s', count(*), coalesce(string_agg(format('%s:%s', h.bucket_start, h.quantity), ' '
                                                                order by h.bucket_start) filter (where h.quantity <> 0), '-'))
    from tally.usage_history(u, r, b, null, null, null, at) h
$$;

select is(tests.hist('nobody', '7d', 'day'),
          '2026-11-15:0 2026-11-16:0 2026-11-17:0 2026-11-18:0 2026-11-19:0 2026-11-20:0 2026-11-21:0',
          'empty user: seven zero days ending today');
select is(tests.hist('nobody', '7d', 'day', 'voice'),
          '2026-11-15:0 2026-11-16:0 2026-11-17:0 2026-11-18:0 2026-11-19:0 2026-11-20:0 2026-11-21:0',
          'empty user stacked: still every bucket, without values');

-- u (UTC): around month and year boundaries, the leap day, a gap, two voices.
select ok(tests.tts('a', 'u', '2026-11-21 09:00+00', 1) and tests.tts('b', 'u', '2026-11-19 09:00+00', 2, 'nova')
      and tests.tts('c', 'u', '2026-11-16 00:00+00', 4) and tests.tts('d', 'u', '2026-11-15 23:59+00', 8)
      and tests.tts('e', 'u', '2026-10-31 12:00+00', 16) and tests.tts('f', 'u', '2026-11-01 12:00+00', 32, 'nova')
      and tests.tts('g', 'u', '2025-12-31 23:00+00', 64) and tests.tts('h', 'u', '2026-01-01 01:00+00', 128)
      and tests.tts('i', 'u', '2024-02-29 12:00+00', 256) and tests.tts('j', 'u', '2024-03-01 00:00+00', 512)
      and tests.tts('k', 'u', '2025-11-30 12:00+00', 1024)
      and tests.tts('x', 'u', '2026-11-20 09:00+00', 4096, status => 'failed'),
   'u: eleven events and a failure');
select is(tests.hist('u', '7d', 'day'),
          '2026-11-15:8 2026-11-16:4 2026-11-17:0 2026-11-18:0 2026-11-19:2 2026-11-20:0 2026-11-21:1',
          'u 7d by day: gaps are zeros, a failure counts nothing (pending)');
select is((select h.failures from tally.usage_history('u', '7d', 'day', null, null, null, '2026-11-21 12:00+00') h
            where h.bucket_start = '2026-11-20'), 1::bigint, 'u: the failure is counted as a failure');
select is(tests.hist('u', '7d', 'day', 'voice'),
          '2026-11-15/af_alloy:8 2026-11-15/nova:0 2026-11-16/af_alloy:4 2026-11-16/nova:0 2026-11-17/af_alloy:0 2026-11-17/nova:0 2026-11-18/af_alloy:0 2026-11-18/nova:0 2026-11-19/af_alloy:0 2026-11-19/nova:2 2026-11-20/af_alloy:0 2026-11-20/nova:0 2026-11-21/af_alloy:1 2026-11-21/nova:0',
          'u 7d stacked by voice: every voice of the range in every bucket');
select is(tests.hist('u', '30d', 'week'),
          '2026-10-19:0 2026-10-26:48 2026-11-02:0 2026-11-09:8 2026-11-16:7',
          'u 30d by week: Monday weeks (the first one cut to Oct 23..25); Sunday Nov 1 is in the week of Oct 26');
select is(tests.hist_nz('u', '30d', 'day'), '30 buckets: 2026-10-31:16 2026-11-01:32 2026-11-15:8 2026-11-16:4 2026-11-19:2 2026-11-21:1',
          'u 30d by day: 30 buckets, Oct 23 to Nov 21');
select is(tests.hist('u', '3m', 'month'), '2026-09-01:0 2026-10-01:16 2026-11-01:47',
          'u 3m by month: three calendar months, the current one included');
select is(tests.hist_nz('u', '12m', 'month'), '12 buckets: 2025-12-01:64 2026-01-01:128 2026-10-01:16 2026-11-01:47',
          'u 12m by month: Dec 2025 to Nov 2026');
select is(tests.hist('u', 'custom', 'month', null, '2025-11-30', '2026-01-01'), '2025-11-01:1024 2025-12-01:64 2026-01-01:128',
          'u custom across the year boundary by month');
select is(tests.hist('u', 'custom', 'week', null, '2025-12-29', '2026-01-11'), '2025-12-29:192 2026-01-05:0',
          'u: the ISO week of Dec 29, 2025 holds New Year''s Eve and New Year''s Day');
select is(tests.hist('u', 'custom', 'day', null, '2024-02-28', '2024-03-01'), '2024-02-28:0 2024-02-29:256 2024-03-01:512',
          'u: the leap day is a day of its own');
select is(tests.hist('u', 'custom', 'month', null, '2024-02-01', '2024-03-31'), '2024-02-01:256 2024-03-01:512',
          'u: February 2024 by month');
select is(tests.hist('u', 'custom', 'month', null, '2026-10-31', '2026-11-01'), '2026-10-01:16 2026-11-01:32',
          'u: a range cutting months counts only its own days');

-- Two time zones: the same instants land on other local days in Los Angeles; the DST change (Nov 1) has 25 hours.
select lives_ok($$select tally.set_user_settings('la', 'America/Los_Angeles')$$, 'la lives in Los Angeles');
select ok(tests.tts('l1', 'la', '2026-11-01 07:30+00', 1) and tests.tts('l2', 'la', '2026-11-01 08:30+00', 2)
      and tests.tts('l3', 'la', '2026-11-01 09:30+00', 4) and tests.tts('l4', 'la', '2026-11-02 07:30+00', 8)
      and tests.tts('l5', 'la', '2026-11-02 08:30+00', 16) and tests.tts('l6', 'la', '2026-11-01 06:30+00', 32),
   'la: events around the end of October and the fall-back day');
select is(tests.hist('la', 'custom', 'day', null, '2026-10-31', '2026-11-02', '2026-11-21 12:00+00'),
          '2026-10-31:32 2026-11-01:15 2026-11-02:16',
          'la: 23:30 PDT is Oct 31; the 25-hour Nov 1 holds 00:30 PDT, both 01:30s and 23:30 PST (pending)');
select is(tests.hist('la', '3m', 'month', null, null, null, '2026-11-01 06:45+00') || ' / '
          || tests.hist('u', '3m', 'month', null, null, null, '2026-11-01 06:45+00'),
          '2026-08-01:0 2026-09-01:0 2026-10-01:32 / 2026-09-01:0 2026-10-01:16 2026-11-01:32',
          'at 06:45 UTC on Nov 1 it is still Oct 31 in Los Angeles, Nov 1 in UTC: the ranges end on each user''s today');
select is(tally.merge_pending(), 18, 'merge folds the eighteen deltas');
select is(tests.hist('u', '7d', 'day', 'voice') || ' # ' || tests.hist('u', '30d', 'week') || ' # ' || tests.hist_nz('u', '12m', 'month'),
          '2026-11-15/af_alloy:8 2026-11-15/nova:0 2026-11-16/af_alloy:4 2026-11-16/nova:0 2026-11-17/af_alloy:0 2026-11-17/nova:0 2026-11-18/af_alloy:0 2026-11-18/nova:0 2026-11-19/af_alloy:0 2026-11-19/nova:2 2026-11-20/af_alloy:0 2026-11-20/nova:0 2026-11-21/af_alloy:1 2026-11-21/nova:0 # 2026-10-19:0 2026-10-26:48 2026-11-02:0 2026-11-09:8 2026-11-16:7 # 12 buckets: 2025-12-01:64 2026-01-01:128 2026-10-01:16 2026-11-01:47',
          'u: the same histories after the merge');
select is(tests.hist('la', 'custom', 'day', null, '2026-10-31', '2026-11-02', '2026-11-21 12:00+00'),
          '2026-10-31:32 2026-11-01:15 2026-11-02:16', 'la: the same local days after the merge');

select is(tests.error_of($$select * from tally.usage_history('u', '2q', 'day')$$),
          'PT011: range ''2q'' is not known: use 7d, 30d, 3m, 12m (any N followed by d, w, m or y) or custom with from_day and to_day []',
          'an unknown range is refused');
select is(tests.error_of($$select * from tally.usage_history('u', '7d', 'hour')$$),
          'PT011: bucket ''hour'' is not known: use day, week or month []', 'an unknown bucket is refused');
select is(tests.error_of($$select * from tally.usage_history('u', 'custom', 'day', null, '2026-02-01', '2026-01-01')$$),
          'PT011: a custom range needs from_day <= to_day (got 2026-02-01 .. 2026-01-01) []', 'a reversed custom range is refused');

select * from finish();
rollback;
