-- Cohort retention across a year boundary: users by first-active UTC month, active again in later months; month offsets
-- run on from December to January. New Year's Eve in Tokyo and Los Angeles: platform months are UTC months, whatever
-- the user's time zone.
begin;
select plan(7);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

create function tests.cohorts_of(from_month date default null, to_month date default null)
returns text language sql as $$
  select string_agg(format('%s+%s %s/%s %s', to_char(c.cohort_month, 'YYYY-MM'), c.month_offset, c.users, c.cohort_users,
                           c.retention_pct), ' | ')
    from tally.admin_cohorts(from_month, to_month) c
$$;

select lives_ok($$select tally.set_user_settings('c3', 'Asia/Tokyo'), tally.set_user_settings('c6', 'America/Los_Angeles')$$,
                'c3 lives in Tokyo, c6 in Los Angeles');
select ok(tests.tts('a1', 'c1', '2025-11-15 10:00+00') and tests.tts('a2', 'c1', '2025-12-03 10:00+00')
      and tests.tts('a3', 'c1', '2026-01-10 10:00+00') and tests.tts('a4', 'c1', '2026-03-05 10:00+00')
      and tests.tts('b1', 'c2', '2025-11-20 10:00+00', status => 'failed') and tests.tts('b2', 'c2', '2026-01-02 10:00+00')
      -- 23:30 UTC on Dec 31 is New Year's Day in Tokyo, but December in UTC: c3's cohort is December 2025.
      and tests.tts('c1', 'c3', '2025-12-31 23:30+00') and tests.tts('c2', 'c3', '2026-02-14 10:00+00')
      and tests.tts('d1', 'c4', '2025-12-10 10:00+00') and tests.tts('d2', 'c4', '2026-02-01 10:00+00')
      and tests.tts('e1', 'c5', '2026-01-15 10:00+00')
      -- 03:00 UTC on Jan 1 is still New Year's Eve in Los Angeles, but January in UTC: c6's cohort is January 2026.
      and tests.tts('f1', 'c6', '2026-01-01 03:00+00') and tests.tts('f2', 'c6', '2026-01-20 10:00+00'),
   'thirteen events of six users from November 2025 to March 2026');
select ok(tally.merge_pending() = 13 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

select is(tests.cohorts_of('2025-11-01', '2026-01-31'),
          '2025-11+0 2/2 100.0 | 2025-11+1 1/2 50.0 | 2025-11+2 2/2 100.0 | 2025-11+4 1/2 50.0 | '
          '2025-12+0 2/2 100.0 | 2025-12+2 2/2 100.0 | '
          '2026-01+0 2/2 100.0',
          'cohorts of November, December and January: offsets count months across the year boundary');
select is((select string_agg(format('%s>%s', to_char(c.cohort_month, 'YYYY-MM'), to_char(c.active_month, 'YYYY-MM')), ' ')
             from tally.admin_cohorts('2025-11-15', '2025-11-15') c),
          '2025-11>2025-11 2025-11>2025-12 2025-11>2026-01 2025-11>2026-03',
          'a month without activity has no row; a day picks its month');
select is(tests.cohorts_of(),
          tests.cohorts_of((date_trunc('month', now() at time zone 'UTC') - interval '11 months')::date,
                           (now() at time zone 'UTC')::date),
          'by default the cohorts of the last 12 months up to this one');

select * from finish();
rollback;
