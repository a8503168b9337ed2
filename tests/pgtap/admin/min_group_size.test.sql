-- Analysts cannot single out a user: every breakdown (totals, leaderboards, trends, week-over-week per value,
-- reliability, error codes, cohorts, funnel steps) hides groups of fewer distinct users than the minimum group size
-- (default 5), the platform-wide figures still count everyone; the views themselves are closed to analysts; only
-- the owner changes the minimum (1 = the explicit opt-out), analysts cannot.
begin;
select plan(27);

-- Renderings, called as the analyst (SQL functions run with the caller's rights).
grant usage on schema tests to tally_analyst;
create function tests.groups(dimension text)
returns text language sql as $$
  select coalesce(string_agg(format('%s u%s', t.value, t.users), ' | ' order by t.value), '-')
    from tally.admin_totals(dimension) t
$$;
create function tests.board(dimension text)
returns text language sql as $$
  select coalesce(string_agg(format('%s u%s', b.value, b.users), ' | ' order by b.value), '-')
    from tally.admin_leaderboard(dimension, 'all', 'users', 100) b
$$;
create function tests.trend(only_values text[] default null)
returns text language sql as $$
  select coalesce(string_agg(format('%s e%s u%s', t.value, t.events, t.users), ' | ' order by t.value), '-')
    from tally.admin_trend('voice', only_values, '2026-11-02', '2026-11-02') t
$$;
create function tests.funnel()
returns text language sql as $$
  select string_agg(format('%s:%s', f.kind, f.users), ' ' order by f.step)
    from tally.admin_funnel('{tts,ocr}', '2026-11-01', '2026-12-01') f
$$;

-- Voices: 'five' used by v1..v5, 'rare4' by v6..v9, 'solo' by v10 alone, 'old' by o1 and o2 (in October).
-- Kinds: tts by all 12, ocr by v1 and v2 only. Error codes: rate_limited met by v1..v5, boom by v6 alone.
select ok((select bool_and(tests.tts('f' || i, 'v' || i, '2026-11-02 10:00+00', 100, voice => 'five')) from generate_series(1, 5) i)
      and (select bool_and(tests.tts('r' || i, 'v' || i, '2026-11-02 10:00+00', 100, voice => 'rare4')) from generate_series(6, 9) i)
      and tests.tts('s10', 'v10', '2026-11-02 10:00+00', 100, voice => 'solo')
      and tests.tts('o1', 'o1', '2026-10-15 10:00+00', 100, voice => 'old')
      and tests.tts('o2', 'o2', '2026-10-15 10:00+00', 100, voice => 'old')
      and tally.record_usage('c1', 'v1', 'ocr', 1, '2026-11-03 10:00+00') and tally.record_usage('c2', 'v2', 'ocr', 1, '2026-11-03 10:00+00')
      and (select bool_and(tally.record_usage('x' || i, 'v' || i, 'tts', 100, '2026-11-04 10:00+00', status => 'failed',
                                              error_code => 'rate_limited', attributes => '{"voice": "five"}'))
             from generate_series(1, 5) i)
      and tally.record_usage('b6', 'v6', 'tts', 100, '2026-11-04 10:00+00', status => 'failed', error_code => 'boom',
                             attributes => '{"voice": "rare4"}'),
          'twelve users: groups of 1, 2, 4 and 5 users');
select ok(tally.merge_pending() > 0 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

set local role tally_analyst;
select is((select min_group_size from tally.analytics_settings), 5, 'the analyst reads the minimum group size: 5 by default');
select is(tests.groups('voice'), 'five u5', 'totals: a voice of 5 users is shown, voices of 1, 2 and 4 users are not');
select is(tests.groups('kind'), 'tts u12', 'totals: a kind of 2 users is not shown');
select is(tests.board('voice'), 'five u5', 'leaderboard: only groups of at least 5 users are ranked');
select is(tests.trend(), 'five e5 u5', 'trend: only values with a day of at least 5 users are listed');
select is(tests.trend('{solo,rare4}'), 'rare4 e0 u0 | solo e0 u0',
          'trend: a day of fewer users reads as a day without use, even when the value is asked for by name');
select is((select string_agg(format('%s=%s', c.value, c.this_week), ' ' order by c.value)
             from tally.admin_week_over_week('2026-11-08', 'voice') c where c.metric = 'events'),
          '*=12 five=5', 'week over week: per value only groups of 5 users; the platform card counts all 12 events');
select is((select string_agg(format('%s/%s', r.kind, r.format), ' ' order by r.kind, r.format)
             from tally.admin_reliability('all') r),
          'tts/ tts/*', 'reliability: the kind of 2 users is not shown');
select is((select string_agg(format('%s u%s', e.error_code, e.users), ' ') from tally.admin_error_codes('all', 100) e),
          'rate_limited u5', 'error codes: the code only one user met is not shown');
select is((select string_agg(format('%s+%s %s/%s', to_char(c.cohort_month, 'YYYY-MM'), c.month_offset, c.users, c.cohort_users), ' ')
             from tally.admin_cohorts('2026-10-01', '2026-11-01') c),
          '2026-11+0 10/10', 'cohorts: the October cohort of 2 users is not shown');
select is(tests.funnel(), 'tts:10 ocr:0', 'funnel: a step only 2 users reached reads as reached by none');
select is((select format('users=%s events=%s', o.users, o.events) from tally.admin_overview() o), 'users=12 events=14',
          'the platform-wide overview counts everyone');

-- The analyst cannot go around the functions or change the minimum.
select throws_ok($$select * from tally.admin_totals_mv$$, '42501', null, 'the views (every group) are closed to analysts');
select throws_ok($$select * from tally.admin_cohorts_mv$$, '42501', null, 'all of them');
select throws_ok($$select tally.set_min_group_size(1)$$, '42501', null, 'an analyst cannot opt out');
select throws_ok($$update tally.analytics_settings set min_group_size = 1$$, '42501', null,
                 'nor change the settings table');
select is((select min_group_size from tally.analytics_settings), 5, 'the minimum is still 5');
reset role;

-- The owner opts out: every group is shown at once (no refresh).
set local role tally_owner;
select is(tally.set_min_group_size(1), 5, 'the owner sets the minimum to 1 (returns the previous value)');
select throws_ok($$select tally.set_min_group_size(0)$$, 'PT011',
                 'min_users must be between 1 (show every group) and 1000 (got 0)', 'below 1 is refused');
reset role;
set local role tally_analyst;
select is(tests.groups('voice'), 'five u5 | old u2 | rare4 u4 | solo u1', 'after the opt-out the analyst sees every voice');
select is(tests.funnel(), 'tts:10 ocr:2', 'and every funnel step');
select is((select string_agg(e.error_code, ' ' order by e.error_code) from tally.admin_error_codes('all', 100) e),
          'boom rate_limited', 'and every error code');
reset role;

-- A minimum of 4: the group of 4 is shown, the smaller ones are not.
set local role tally_owner;
select is(tally.set_min_group_size(4), 1, 'the owner sets the minimum to 4');
reset role;
set local role tally_analyst;
select is(tests.groups('voice'), 'five u5 | rare4 u4', 'a group of exactly the minimum is shown');
select is(tests.board('voice'), 'five u5 | rare4 u4', 'in the leaderboard too');
reset role;

select * from finish();
rollback;
