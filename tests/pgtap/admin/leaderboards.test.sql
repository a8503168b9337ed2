-- Leaderboards of any declared dimension (voice, model, a declared template) for 24h, 7d, 30d and all time,
-- ranked by events, quantity or users. The named windows are rolling: the 24 hours, 7 and 30 days ending when the
-- refresh started (exact instants, across midnight), so events are placed hours before the start of this test's
-- transaction and the expected tables do not depend on the time of day the test runs.
begin;
select plan(16);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

-- The instant `hours` before the start of the transaction (the refresh below starts a little later).
create function tests.hours_ago(hours numeric)
returns timestamptz language sql as $$
  select now() - make_interval(secs => hours * 3600)
$$;
create function tests.board(dimension text, time_window text, metric text default 'events', max_rows integer default 10)
returns text language sql as $$
  select coalesce(string_agg(format('%s.%s e%s q%s u%s', l.rank, l.value, l.events, l.quantity, l.users), ' | '), '')
    from tally.admin_leaderboard(dimension, time_window, metric, max_rows) l
$$;

select lives_ok($$select tally.declare_dimension('template', '{template}')$$, 'a product declares a template dimension');
-- u1: af_alloy 1 hour ago and twice 3 days ago, af_bella 20 days ago. u2: af_bella 23 hours ago, nova 40 days ago
-- (openai). u3: af_bella 25 hours ago, af_alloy 8 days ago, a failed nova block 2 hours ago.
select ok(tests.tts('a1', 'u1', tests.hours_ago(1), 100)
      and tests.tts('a2', 'u1', tests.hours_ago(72), 100)
      and tests.tts('a3', 'u1', tests.hours_ago(72), 100)
      and tests.tts('b1', 'u1', tests.hours_ago(20 * 24), 500, voice => 'af_bella')
      and tests.tts('b2', 'u2', tests.hours_ago(23), 50, voice => 'af_bella')
      and tests.tts('b3', 'u3', tests.hours_ago(25), 70, voice => 'af_bella')
      and tests.tts('n1', 'u2', tests.hours_ago(40 * 24), 1000, voice => 'nova', model => 'openai')
      and tests.tts('a4', 'u3', tests.hours_ago(8 * 24), 10)
      and tests.tts('n2', 'u3', tests.hours_ago(2), 70, voice => 'nova', model => 'openai', status => 'failed'),
   'nine TTS events over 40 days');
-- Templates of an export product: invoice three times, receipt once.
select ok(tally.record_usage('x1', 'u1', 'export', 1, tests.hours_ago(48), attributes => '{"template": "invoice"}')
      and tally.record_usage('x2', 'u2', 'export', 1, tests.hours_ago(47), attributes => '{"template": "invoice"}')
      and tally.record_usage('x3', 'u2', 'export', 1, tests.hours_ago(9 * 24), attributes => '{"template": "invoice"}')
      and tally.record_usage('x4', 'u3', 'export', 1, tests.hours_ago(26), attributes => '{"template": "receipt"}'),
   'four exports with templates');
select ok(tally.merge_pending() = 13 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

-- 24h = the last 24 hours: a1 (1 h ago) and b2 (23 h ago), not b3 (25 h ago, though it may well be the same
-- calendar day as b2); nova only failed (0 events: left out).
select is(tests.board('voice', '24h'), '1.af_alloy e1 q100 u1 | 1.af_bella e1 q50 u1',
          '24h voices: the last 24 hours (23 h ago is in, 25 h ago is out); a tie shares rank 1');
select ok((select bool_and(l.window_end - l.window_start = interval '24 hours' and l.window_end >= now()
                           and l.window_end <= l.refreshed_at)
             from tally.admin_leaderboard('voice', '24h') l),
          'the 24h window is [t - 24 hours, t) for t the start of the refresh call (window_start, window_end)');
-- 7d: a1-a3 (a4 is 8 days ago), b2 and b3.
select is(tests.board('voice', '7d'), '1.af_alloy e3 q300 u1 | 2.af_bella e2 q120 u2', '7d voices');
-- 30d: a1-a4, b1-b3; nova only the failure (n1 is 40 days ago).
select is(tests.board('voice', '30d'), '1.af_alloy e4 q310 u2 | 2.af_bella e3 q620 u3', '30d voices');
select is(tests.board('voice', 'all'), '1.af_alloy e4 q310 u2 | 2.af_bella e3 q620 u3 | 3.nova e1 q1000 u2',
          'all-time voices (nova: n1 and u3''s failure count two users)');
select is((select format('%s %s', l.window_start is null, l.window_end is not null) from tally.admin_leaderboard('voice', 'all') l limit 1),
          't t', 'all time has no start and ends at the refresh');
select is(tests.board('voice', 'all', 'quantity', 2), '1.nova e1 q1000 u2 | 2.af_bella e3 q620 u3',
          'ranked by quantity, top 2');
select is(tests.board('model', '30d'), '1.kokoro e7 q930 u3', '30d models: openai only failed in the window');
select is(tests.board('template', '7d') || ' / ' || tests.board('template', 'all'),
          '1.invoice e2 q2 u2 | 2.receipt e1 q1 u1 / 1.invoice e3 q3 u2 | 2.receipt e1 q1 u1',
          'a declared template dimension has leaderboards too');
select is(tests.result_of($$(select count(*) from tally.admin_leaderboard('voice', '90d'))$$),
          'error PT011: time_window must be one of 24h, 7d, 30d, all (got ''90d'')', 'an unknown window is a clear error');
select is(tests.result_of($$(select count(*) from tally.admin_leaderboard('voice', '7d', from_day => '2026-11-01', to_day => '2026-11-08'))$$),
          'error PT011: give either time_window (got ''7d'') or from_day and to_day, not both', 'a window or days, not both');

select * from finish();
rollback;
