-- Leaderboards of any declared dimension (voice, model, a declared template) for 24h, 7d, 30d and all time,
-- ranked by events, quantity or users. Windows cover the UTC days overlapping them, so events are placed on days
-- counted back from today (UTC) and the expected tables do not depend on the hour the test runs.
begin;
select plan(13);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

-- Noon of the UTC day `days` before today.
create function tests.days_ago(days integer)
returns timestamptz language sql as $$
  select (date_trunc('day', now() at time zone 'UTC') - make_interval(days => days) + interval '12 hours') at time zone 'UTC'
$$;
create function tests.board(dimension text, time_window text, metric text default 'events', max_rows integer default 10)
returns text language sql as $$
  select coalesce(string_agg(format('%s.%s e%s q%s u%s', l.rank, l.value, l.events, l.quantity, l.users), ' | '), '')
    from tally.admin_leaderboard(dimension, time_window, metric, max_rows) l
$$;

select lives_ok($$select tally.declare_dimension('template', '{template}')$$, 'a product declares a template dimension');
-- u1: af_alloy today and twice 3 days ago, af_bella 20 days ago. u2: af_bella yesterday, nova 40 days ago (openai).
-- u3: af_alloy 8 days ago, a failed nova block today.
select ok(tests.tts('a1', 'u1', tests.days_ago(0), 100)
      and tests.tts('a2', 'u1', tests.days_ago(3), 100)
      and tests.tts('a3', 'u1', tests.days_ago(3), 100)
      and tests.tts('b1', 'u1', tests.days_ago(20), 500, voice => 'af_bella')
      and tests.tts('b2', 'u2', tests.days_ago(1), 50, voice => 'af_bella')
      and tests.tts('n1', 'u2', tests.days_ago(40), 1000, voice => 'nova', model => 'openai')
      and tests.tts('a4', 'u3', tests.days_ago(8), 10)
      and tests.tts('n2', 'u3', tests.days_ago(0), 70, voice => 'nova', model => 'openai', status => 'failed'),
   'eight TTS events over 40 days');
-- Templates of an export product: invoice three times, receipt once.
select ok(tally.record_usage('x1', 'u1', 'export', 1, tests.days_ago(2), attributes => '{"template": "invoice"}')
      and tally.record_usage('x2', 'u2', 'export', 1, tests.days_ago(2), attributes => '{"template": "invoice"}')
      and tally.record_usage('x3', 'u2', 'export', 1, tests.days_ago(9), attributes => '{"template": "invoice"}')
      and tally.record_usage('x4', 'u3', 'export', 1, tests.days_ago(1), attributes => '{"template": "receipt"}'),
   'four exports with templates');
select ok(tally.merge_pending() = 12 and (select count(*) = 9 from tally.refresh_analytics()), 'merged and refreshed');

-- 24h = yesterday and today: a1 (af_alloy), b2 (af_bella); nova only failed (0 events: left out).
select is(tests.board('voice', '24h'), '1.af_alloy e1 q100 u1 | 1.af_bella e1 q50 u1', '24h voices: a tie shares rank 1');
-- 7d = the last 7 days and today: a1-a3 (a4 is 8 days ago), b2.
select is(tests.board('voice', '7d'), '1.af_alloy e3 q300 u1 | 2.af_bella e1 q50 u1', '7d voices');
-- 30d: a1-a4, b1 and b2; nova only the failure (n1 is 40 days ago).
select is(tests.board('voice', '30d'), '1.af_alloy e4 q310 u2 | 2.af_bella e2 q550 u2', '30d voices');
select is(tests.board('voice', 'all'), '1.af_alloy e4 q310 u2 | 2.af_bella e2 q550 u2 | 3.nova e1 q1000 u2',
          'all-time voices (nova: n1 and u3''s failure count two users)');
select is(tests.board('voice', 'all', 'quantity', 2), '1.nova e1 q1000 u2 | 2.af_bella e2 q550 u2',
          'ranked by quantity, top 2');
select is(tests.board('model', '30d'), '1.kokoro e6 q860 u3', '30d models: openai only failed in the window');
select is(tests.board('template', '7d') || ' / ' || tests.board('template', 'all'),
          '1.invoice e2 q2 u2 | 2.receipt e1 q1 u1 / 1.invoice e3 q3 u2 | 2.receipt e1 q1 u1',
          'a declared template dimension has leaderboards too');
select is(tests.result_of($$(select count(*) from tally.admin_leaderboard('voice', '90d'))$$),
          'error PT011: time_window must be one of 24h, 7d, 30d, all (got ''90d'')', 'an unknown window is a clear error');

select * from finish();
rollback;
