-- The plan filter of every admin figure: only events whose plan in force (tally.usage_events.plan, set when recorded)
-- was that plan count; the whole platform counts each user once whatever their plans; a plan's figures are a group
-- like any breakdown, so a plan with fewer users than the minimum group size (here 3 of 5) shows nothing of them.
begin;
select plan(30);

-- Plans: free (the default), pro and team. Six pro users (p6 moves to free on Oct 20), three team users, five users
-- without a subscription (on free, the default). Subscriptions first: an event keeps the plan in force when it occurred.
select lives_ok($$
  select tally.upsert_plan('free', 0, 0, '{}', true), tally.upsert_plan('pro', 1, 10), tally.upsert_plan('team', 2, 50);
  select tally.start_subscription('p' || i, 'pro', '2026-10-01 00:00+00') from generate_series(1, 6) i;
  select tally.start_subscription('p6', 'free', '2026-10-20 00:00+00');
  select tally.start_subscription('t' || i, 'team', '2026-10-01 00:00+00') from generate_series(1, 3) i
$$, 'plans and subscriptions');

-- Pro: a 100-character alloy block each on Oct 10, p1 and p2 fail one with rate_limited on Oct 11, p1..p5 view the
-- paywall on Oct 12 and p1..p5 click on Oct 13. Team: a 200-character nova block each on Oct 12 and an mp3 export each
-- that fails with encoder_timeout on Oct 12, and they also view and click. Free: f1..f5 OCR a page on Oct 13 and make
-- a 10-character alloy block; p6, on free since Oct 20, a 10-character alloy block on Oct 25.
select ok((select bool_and(tests.tts('pa' || i, 'p' || i, '2026-10-10 10:00+00', 100, voice => 'alloy')) from generate_series(1, 6) i)
      and (select bool_and(tests.tts('pf' || i, 'p' || i, '2026-10-11 10:00+00', 100, voice => 'alloy', status => 'failed'))
             from generate_series(1, 2) i)
      and (select bool_and(tally.record_usage('pv' || i, 'p' || i, 'paywall.viewed', 0, '2026-10-12 10:00+00', billable => false)
                           and tally.record_usage('pc' || i, 'p' || i, 'paywall.clicked', 0, '2026-10-13 10:00+00', billable => false))
             from generate_series(1, 5) i)
      and (select bool_and(tests.tts('ta' || i, 't' || i, '2026-10-12 10:00+00', 200, voice => 'nova')
                           and tally.record_usage('tx' || i, 't' || i, 'export', 1, '2026-10-12 11:00+00', status => 'failed',
                                                  error_code => 'encoder_timeout', attributes => '{"format": "mp3"}')
                           and tally.record_usage('tv' || i, 't' || i, 'paywall.viewed', 0, '2026-10-12 12:00+00', billable => false)
                           and tally.record_usage('tc' || i, 't' || i, 'paywall.clicked', 0, '2026-10-12 13:00+00', billable => false))
             from generate_series(1, 3) i)
      and (select bool_and(tally.record_usage('fo' || i, 'f' || i, 'ocr', 1, '2026-10-13 10:00+00')
                           and tests.tts('fa' || i, 'f' || i, '2026-10-13 11:00+00', 10, voice => 'alloy'))
             from generate_series(1, 5) i)
      and tests.tts('p6late', 'p6', '2026-10-25 10:00+00', 10, voice => 'alloy'),
   'fourteen users on three plans');
select is((select string_agg(format('%s:%s', e.plan, e.n), ' ' order by e.plan)
             from (select plan, count(*) as n from tally.usage_events group by plan) e),
          'free:11 pro:18 team:12', 'each event carries the plan in force when it occurred');
select ok(tally.merge_pending() = 41 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

-- The analyst's view, minimum group size 5.
create function tests.totals(dimension text, plan text)
returns text language sql as $$
  select coalesce(string_agg(format('%s e%s f%s q%s%s u%s', t.value, t.events, t.failures, coalesce(t.quantity::text, '-'),
                                    coalesce(' ' || t.unit, ''), t.users), ' | '), '-')
    from tally.admin_totals(dimension, 'all', plan => plan) t
$$;
grant usage on schema tests to tally_analyst;
set local role tally_analyst;

select is(tests.totals('kind', null), 'tts e15 f2 q1260 characters u14 | paywall.clicked e8 f0 q0 paywall.clicked u8 | '
          'paywall.viewed e8 f0 q0 paywall.viewed u8 | ocr e5 f0 q5 pages u5',
          'all plans: p6 counts once among the 14 users of tts (pro, then free); the exports (3 users) are hidden');
select is(tests.totals('kind', 'pro'), 'tts e6 f2 q600 characters u6 | paywall.clicked e5 f0 q0 paywall.clicked u5 | paywall.viewed e5 f0 q0 paywall.viewed u5',
          'pro: only events recorded under pro (p6''s Oct 25 block is free''s)');
select is(tests.totals('kind', 'free'), 'tts e6 f0 q60 characters u6 | ocr e5 f0 q5 pages u5', 'free: the default plan''s users and p6 since Oct 20');
select is(tests.totals('kind', 'team'), '-', 'team: three users, fewer than the minimum: nothing of them is shown');
select is(tests.totals('plan', null), 'pro e16 f2 q600 characters u6 | free e11 f0 q- u6',
          'the plan is a declared dimension too: totals per plan, the team plan hidden; free''s characters and pages '
          'are never added (no quantity, no unit)');
select is((select format('%s %s', coalesce(t.quantity::text, '-'), coalesce(t.unit, '-'))
             from tally.admin_trend('plan', '{free}', '2026-10-13', '2026-10-13') t),
          '- -', 'the trend of the free plan on Oct 13: characters and pages, so no quantity');
select is((select string_agg(format('%s=%s', c.value, coalesce(c.this_week::text, '-')), ' ' order by c.value)
             from tally.admin_week_over_week('2026-10-14', 'plan') c where c.metric = 'quantity'),
          'free=- pro=600', 'week over week per plan: pro''s quantity is all characters, free''s mixes units');
select is((select format('users=%s events=%s ok=%s failed=%s paying=%s', o.users, o.events, o.succeeded, o.failures, o.paying_users)
             from tally.admin_overview(plan => 'pro') o),
          'users=6 events=16 ok=16 failed=2 paying=6', 'the overview of the pro plan: its users, events and paying users');
select is((select count(*)::int from tally.admin_overview(plan => 'team')), 0,
          'the overview of a plan with 3 users has no row (its figures would be those 3 users'')');
select is((select format('users=%s paying=%s', o.users, o.paying_users) from tally.admin_overview() o), 'users=14 paying=9',
          'the whole platform is always shown and counts everyone (paying: pro and team subscribers)');
select is((select string_agg(format('%s u%s', l.value, l.users), ' | ') from tally.admin_leaderboard('voice', 'all', plan => 'pro') l),
          'alloy u6', 'leaderboard of the pro plan');
select is((select count(*)::int from tally.admin_leaderboard('voice', 'all', plan => 'team')), 0, 'none for the team plan');
select is((select string_agg(format('%s %s e%s u%s', to_char(t.day, 'MM-DD'), t.value, t.events, t.users), ' | ')
             from tally.admin_trend('voice', '{nova}', '2026-10-12', '2026-10-12', 'team') t),
          '10-12 nova e0 u0', 'trend: a day of the team plan reads as a day without use');
select is((select format('dau=%s wau=%s mau=%s new=%s ok=%s failed=%s', a.dau, a.wau, a.mau, a.new_users, a.succeeded, a.failed)
             from tally.admin_active_users('2026-10-12', '2026-10-12', 'team') a),
          'dau=0 wau=0 mau=0 new=0 ok=0 failed=0', 'active users of the team plan: every count below the minimum reads 0');
select is((select format('dau=%s wau=%s new=%s ok=%s', a.dau, a.wau, a.new_users, a.succeeded)
             from tally.admin_active_users('2026-10-10', '2026-10-10', 'pro') a),
          'dau=6 wau=6 new=6 ok=6', 'active users of the pro plan on Oct 10');
select is((select string_agg(format('%s %s/%s', c.metric, trim_scale(c.this_week), trim_scale(c.last_week)), ' ')
             from tally.admin_week_over_week('2026-10-14', plan => 'team') c where c.value = '*' and c.metric in ('events', 'active_users')),
          'events 0/0 active_users 0/0', 'week over week of the team plan: a week of fewer users than the minimum reads as none');
select is((select string_agg(format('%s %s/%s', c.metric, trim_scale(c.this_week), coalesce(trim_scale(c.last_week)::text, '-')), ' ')
             from tally.admin_week_over_week('2026-10-14', plan => 'pro') c where c.value = '*' and c.metric in ('events', 'active_users', 'success_rate')),
          'events 16/0 active_users 6/0 success_rate 88.89/-', 'week over week of the pro plan (16 of 18 attempts succeeded)');
select is((select count(*)::int from tally.admin_reliability('all', plan => 'team')) + (select count(*)::int from tally.admin_error_codes('all', plan => 'team')),
          0, 'reliability and error codes of the team plan: hidden');
select is((select count(*)::int from tally.admin_cohorts('2026-10-01', '2026-10-01', 'team')), 0, 'cohorts of the team plan: hidden');
select is((select string_agg(format('%s:%s', f.kind, f.users), ' ' order by f.step)
             from tally.admin_funnel('{paywall.viewed,paywall.clicked}', plan => 'pro') f),
          'paywall.viewed:5 paywall.clicked:5', 'funnel of the pro plan');
select is((select string_agg(format('%s:%s', f.kind, f.users), ' ' order by f.step)
             from tally.admin_funnel('{paywall.viewed,paywall.clicked}', plan => 'team') f),
          'paywall.viewed:0 paywall.clicked:0', 'funnel of the team plan: hidden');
select throws_ok($$select * from tally.admin_totals('kind', plan => 'nope')$$, 'PT011',
                 'plan ''nope'' is not a plan of tally.plans (NULL = every plan, '''' = events with no plan in force)',
                 'an unknown plan is a clear error, not an empty answer');
reset role;

-- The owner shows every group: the team plan's figures count only team events.
select is(tally.set_min_group_size(1), 5, 'the owner shows every group');
set local role tally_analyst;
select is(tests.totals('kind', 'team'), 'paywall.clicked e3 f0 q0 paywall.clicked u3 | paywall.viewed e3 f0 q0 paywall.viewed u3 | '
          'tts e3 f0 q600 characters u3 | export e0 f3 q0 files u3',
          'team, every group shown: its three users'' events and nothing else');
select is((select format('%s/%s %s %s', r.kind, r.format, r.failed, coalesce(r.success_rate::text, '-'))
             from tally.admin_reliability('all', 'export', plan => 'team') r where r.format = '*'),
          'export/* 3 0.00', 'reliability of the team plan: its failed exports');
select is((select string_agg(format('%s:%s', f.kind, f.users), ' ' order by f.step)
             from tally.admin_funnel('{paywall.viewed,paywall.clicked}', plan => 'team') f),
          'paywall.viewed:3 paywall.clicked:3', 'funnel of the team plan');
reset role;

select * from finish();
rollback;
