-- Funnels over ordered kinds from the merge-maintained step days: a user counts at step k when steps 1..k happened
-- inside the timeframe at non-decreasing times (skipping a step or doing it only before the previous one stops them;
-- uses before the timeframe play no part), with conversion and drop-off; a failed event is not a step reached;
-- pending (not yet merged) events count, so a funnel is exact at commit.
begin;
select plan(52);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

create function tests.step(event_id text, user_id text, kind text, at timestamptz, status text default 'succeeded')
returns boolean language sql as $$
  select tally.record_usage(event_id => event_id, user_id => user_id, kind => kind, occurred_at => at, status => status,
                            billable => false)
$$;
create function tests.funnel_of(steps text[], from_at timestamptz default null, to_at timestamptz default null)
returns text language sql as $$
  select string_agg(format('%s.%s u%s c%s s%s d%s/%s', f.step, f.kind, f.users, coalesce(f.conversion_pct::text, '-'),
                           coalesce(f.step_conversion_pct::text, '-'), f.drop_off, coalesce(f.drop_off_pct::text, '-')),
                    ' | ' order by f.step)
    from tally.admin_funnel(steps, from_at, to_at) f
$$;

select ok(
  -- f1 goes all the way, in order.
  tests.step('f1v', 'f1', 'paywall.viewed', '2026-11-10 10:00+00') and tests.step('f1c', 'f1', 'paywall.clicked', '2026-11-10 10:01+00')
  and tests.step('f1s', 'f1', 'checkout.started', '2026-11-10 10:02+00') and tests.step('f1d', 'f1', 'checkout.completed', '2026-11-10 10:03+00')
  and tests.step('f1v2', 'f1', 'paywall.viewed', '2026-11-11 10:00+00')
  -- f2 skips checkout.started: stops after step 2 although it completed.
  and tests.step('f2v', 'f2', 'paywall.viewed', '2026-11-10 11:00+00') and tests.step('f2c', 'f2', 'paywall.clicked', '2026-11-10 11:01+00')
  and tests.step('f2d', 'f2', 'checkout.completed', '2026-11-10 11:05+00')
  -- f3 clicked before it viewed (out of order): step 1 only.
  and tests.step('f3c', 'f3', 'paywall.clicked', '2026-11-10 09:00+00') and tests.step('f3v', 'f3', 'paywall.viewed', '2026-11-10 10:00+00')
  and tests.step('f3s', 'f3', 'checkout.started', '2026-11-10 10:05+00') and tests.step('f3d', 'f3', 'checkout.completed', '2026-11-10 10:06+00')
  -- f4's completion failed: step 3.
  and tests.step('f4v', 'f4', 'paywall.viewed', '2026-11-10 12:00+00') and tests.step('f4c', 'f4', 'paywall.clicked', '2026-11-10 12:01+00')
  and tests.step('f4s', 'f4', 'checkout.started', '2026-11-10 12:02+00')
  and tests.step('f4d', 'f4', 'checkout.completed', '2026-11-10 12:03+00', 'failed')
  -- f5 first viewed in October, converted in November.
  and tests.step('f5v', 'f5', 'paywall.viewed', '2026-10-01 10:00+00') and tests.step('f5c', 'f5', 'paywall.clicked', '2026-11-10 10:00+00')
  and tests.step('f5s', 'f5', 'checkout.started', '2026-11-10 10:01+00') and tests.step('f5d', 'f5', 'checkout.completed', '2026-11-10 10:02+00')
  -- f6 on Nov 12, its completion comes after the merge below.
  and tests.step('f6v', 'f6', 'paywall.viewed', '2026-11-12 10:00+00') and tests.step('f6c', 'f6', 'paywall.clicked', '2026-11-12 10:01+00')
  and tests.step('f6s', 'f6', 'checkout.started', '2026-11-12 10:02+00'),
  'paywall events of six users recorded');
select is(tally.merge_pending(), 23, 'merged');
select is((select count(*)::int from tally.user_kind_days), 22, 'the merge keeps one row per user, kind and UTC day with a use (failures excluded)');
select ok(tests.step('f6d', 'f6', 'checkout.completed', '2026-11-12 10:03+00'), 'f6 completes after the merge (pending)');

\set steps '''{paywall.viewed,paywall.clicked,checkout.started,checkout.completed}'''
select is(tests.funnel_of(:steps),
          '1.paywall.viewed u6 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u5 c83.33 s83.33 d1/16.67 | '
          '3.checkout.started u4 c66.67 s80.00 d1/20.00 | 4.checkout.completed u3 c50.00 s75.00 d1/25.00',
          'all time: f3 out of order, f2 skipped a step, f4 failed; f6''s pending completion counts');
select is(tests.funnel_of(:steps, '2026-11-01', '2026-11-11'),
          '1.paywall.viewed u4 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u3 c75.00 s75.00 d1/25.00 | '
          '3.checkout.started u2 c50.00 s66.67 d1/33.33 | 4.checkout.completed u1 c25.00 s50.00 d1/50.00',
          'Nov 1-10: users who viewed in the timeframe (not f5, who viewed in October only; not f6)');
select is(tests.funnel_of(:steps, '2026-11-01'),
          '1.paywall.viewed u5 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u4 c80.00 s80.00 d1/20.00 | '
          '3.checkout.started u3 c60.00 s75.00 d1/25.00 | 4.checkout.completed u2 c40.00 s66.67 d1/33.33',
          'from Nov 1 on');
select is(tests.funnel_of('{checkout.completed,paywall.viewed}'),
          '1.checkout.completed u5 c100.00 s100.00 d0/0.00 | 2.paywall.viewed u1 c20.00 s20.00 d4/80.00',
          'order matters: only f1 viewed the paywall (again, the next day) after completing');
select is(tests.funnel_of('{paywall.viewed,export}'),
          '1.paywall.viewed u6 c100.00 s100.00 d0/0.00 | 2.export u0 c0.00 s0.00 d6/100.00', 'a kind nobody reached');

-- Journeys inside a timeframe, the week [Nov 14, Nov 21):
-- g1 viewed in September (60 days before) and went all the way on Nov 19: a completion of this week.
-- g2 clicked before it viewed (Nov 18): step 1 only.
-- g3 viewed on Nov 13, before the week, and did the rest inside it: not in this week's funnel.
-- g4 viewed on Nov 13 and again on Nov 15, then clicked: step 2.
-- g5 clicked at 08:00, viewed at 09:00, clicked at 09:10 and 17:00, started at 09:20, completed at 09:30 (one day):
--    steps 1-4 in order (09:00, 09:10, 09:20, 09:30); the day's first click is before the view, its last after the start.
-- g6 viewed on Nov 20 at 23:00 and clicked after the week ended: step 1 only.
create function tests.week(steps text[]) returns text language sql
as $$ select tests.funnel_of(steps, '2026-11-14 00:00+00', '2026-11-21 00:00+00') $$;
select ok(
  tests.step('g1v0', 'g1', 'paywall.viewed', '2026-09-20 10:00+00') and tests.step('g1v', 'g1', 'paywall.viewed', '2026-11-19 10:00+00')
  and tests.step('g1c', 'g1', 'paywall.clicked', '2026-11-19 10:01+00') and tests.step('g1s', 'g1', 'checkout.started', '2026-11-19 10:02+00')
  and tests.step('g1d', 'g1', 'checkout.completed', '2026-11-19 10:03+00')
  and tests.step('g2c', 'g2', 'paywall.clicked', '2026-11-18 09:00+00') and tests.step('g2v', 'g2', 'paywall.viewed', '2026-11-18 10:00+00')
  and tests.step('g3v', 'g3', 'paywall.viewed', '2026-11-13 23:00+00') and tests.step('g3c', 'g3', 'paywall.clicked', '2026-11-14 01:00+00')
  and tests.step('g3s', 'g3', 'checkout.started', '2026-11-14 01:02+00') and tests.step('g3d', 'g3', 'checkout.completed', '2026-11-14 01:03+00')
  and tests.step('g4v0', 'g4', 'paywall.viewed', '2026-11-13 10:00+00') and tests.step('g4v', 'g4', 'paywall.viewed', '2026-11-15 10:00+00')
  and tests.step('g4c', 'g4', 'paywall.clicked', '2026-11-15 10:01+00')
  and tests.step('g5c0', 'g5', 'paywall.clicked', '2026-11-17 08:00+00') and tests.step('g5v', 'g5', 'paywall.viewed', '2026-11-17 09:00+00')
  and tests.step('g5c', 'g5', 'paywall.clicked', '2026-11-17 09:10+00') and tests.step('g5c2', 'g5', 'paywall.clicked', '2026-11-17 17:00+00')
  and tests.step('g5s', 'g5', 'checkout.started', '2026-11-17 09:20+00') and tests.step('g5d', 'g5', 'checkout.completed', '2026-11-17 09:30+00')
  and tests.step('g6v', 'g6', 'paywall.viewed', '2026-11-20 23:00+00') and tests.step('g6c', 'g6', 'paywall.clicked', '2026-11-21 00:30+00'),
  'journeys of six more users around the week of Nov 14');
\set week '1.paywall.viewed u5 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u3 c60.00 s60.00 d2/40.00 | 3.checkout.started u2 c40.00 s66.67 d1/33.33 | 4.checkout.completed u2 c40.00 s100.00 d0/0.00'
select is(tests.week(:steps), :'week',
          'pending: g1 completes despite its September view; g2 out of order, g3 started before the week, g6 clicked after it');
select is(tally.merge_pending(), 23, 'merged (with f6''s pending completion)');
select is(tests.week(:steps), :'week', 'merged: the same answer (g5''s click at 09:10 is found between the day''s first and last click)');
select is(tests.funnel_of('{paywall.viewed,checkout.completed}', '2026-11-19 10:00+00', '2026-11-19 10:03+00'),
          '1.paywall.viewed u1 c100.00 s100.00 d0/0.00 | 2.checkout.completed u0 c0.00 s0.00 d1/100.00',
          'to_at is exclusive: g1''s completion at 10:03 is outside [10:00, 10:03)');
select is(tests.week('{paywall.clicked,checkout.started}'),
          '1.paywall.clicked u5 c100.00 s100.00 d0/0.00 | 2.checkout.started u3 c60.00 s60.00 d2/40.00',
          'another funnel over the same week: g3 clicked inside it, so it counts from step 1 of this one');

-- The dashboard's funnel: a declared funnel is precomputed by the refresh for the named timeframes (24h, 7d, 30d,
-- all, ending at the refresh) and read from it; any other funnel is computed over the same instants at call time.
-- Both count as tally.admin_funnel counts over the window's instants.
create function tests.window_of(steps text[], time_window text, plan text default null)
returns text language sql as $$
  select string_agg(format('%s.%s u%s c%s s%s d%s/%s', f.step, f.kind, f.users, coalesce(f.conversion_pct::text, '-'),
                           coalesce(f.step_conversion_pct::text, '-'), f.drop_off, coalesce(f.drop_off_pct::text, '-')),
                    ' | ' order by f.step)
    from tally.admin_funnel_window(steps, time_window, plan) f
$$;
create function tests.same_as_exact(steps text[], plan text default null) returns text language sql as $$
  -- Every named window whose answer differs from tally.admin_funnel over the window's instants (none expected).
  select coalesce(string_agg(w, ','), 'none')
    from unnest(array['24h', '7d', '30d', 'all']) as w
   where tests.window_of(steps, w, plan) is distinct from
         (select string_agg(format('%s.%s u%s c%s s%s d%s/%s', f.step, f.kind, f.users, coalesce(f.conversion_pct::text, '-'),
                                   coalesce(f.step_conversion_pct::text, '-'), f.drop_off, coalesce(f.drop_off_pct::text, '-')),
                            ' | ' order by f.step)
            from tally.admin_overview(w) o, tally.admin_funnel(steps, o.window_start, o.window_end, plan) f)
$$;
create function tests.window_refreshed_at(steps text[], time_window text) returns timestamptz language sql as $$
  select max(f.refreshed_at) from tally.admin_funnel_window(steps, time_window) f
$$;

select is(tally.declare_funnel(:steps), false, 'the paywall funnel is declared at install');
select is(tally.declare_funnel('{paywall.clicked,checkout.started}'), true, 'another funnel is declared');
select throws_ok($$select tally.declare_funnel(array['paywall.viewed', '', 'checkout.started'])$$, 'PT011',
                 'steps must be 1 to 20 distinct, non-empty kinds (got {paywall.viewed,"",checkout.started})',
                 'a funnel with an empty step is refused');
select throws_ok($$select * from tally.admin_funnel_window('{paywall.viewed}', '14d')$$, 'PT011',
                 'time_window must be one of 24h, 7d, 30d, all (got ''14d'')', 'an unknown timeframe is refused');
-- Two users within the last day (relative to the transaction's start, so the 24h window holds them whatever the date).
select ok(tests.step('h1v', 'h1', 'paywall.viewed', now() - interval '3 hours')
          and tests.step('h1c', 'h1', 'paywall.clicked', now() - interval '2 hours')
          and tests.step('h2v', 'h2', 'paywall.viewed', now() - interval '3 hours'),
          'h1 viewed and clicked in the last day, h2 only viewed');
select is((select count(*)::int from tally.refresh_analytics()), 10, 'refreshed');
select is(tests.window_of(:steps, '24h'),
          '1.paywall.viewed u2 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u1 c50.00 s50.00 d1/50.00 | '
          '3.checkout.started u0 c0.00 s0.00 d1/100.00 | 4.checkout.completed u0 c0.00 s- d0/-',
          'the last 24 hours of the declared funnel, from the refresh');
select is(tests.same_as_exact(:steps), 'none', 'every named window of the declared funnel = admin_funnel over its instants');
select is(tests.same_as_exact('{paywall.clicked,checkout.started}'), 'none', 'so does the other declared funnel');
select is(tests.same_as_exact('{checkout.completed,paywall.viewed}'), 'none',
          'and a funnel nobody declared, computed at call time');
select is(tests.same_as_exact(:steps, ''), 'none', 'and a plan the refresh does not precompute (events with no plan)');
select is(tests.window_refreshed_at(:steps, 'all'), (select max(l.started_at) from tally.refresh_log l where l.view_name = 'admin_funnel_mv'),
          'a declared funnel is as of the refresh (refreshed_at)');

select ok(tests.step('h2c', 'h2', 'paywall.clicked', now() - interval '1 hour'), 'h2 clicks after the refresh');
select is(tests.window_of(:steps, '24h'),
          '1.paywall.viewed u2 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u1 c50.00 s50.00 d1/50.00 | '
          '3.checkout.started u0 c0.00 s0.00 d1/100.00 | 4.checkout.completed u0 c0.00 s- d0/-',
          'the declared funnel does not see it before the next refresh');
select is(tests.window_of('{paywall.viewed,paywall.clicked}', '24h'),
          '1.paywall.viewed u2 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u2 c100.00 s100.00 d0/0.00',
          'a funnel nobody declared is computed now over the same instants: it does');
select is(tests.window_refreshed_at('{paywall.viewed,paywall.clicked}', '24h'), statement_timestamp(),
          'and says so (refreshed_at = now)');
select is((select count(*)::int from tally.refresh_analytics()), 10, 'refreshed again');
select is(tests.window_of(:steps, '24h'),
          '1.paywall.viewed u2 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u2 c100.00 s100.00 d0/0.00 | '
          '3.checkout.started u0 c0.00 s0.00 d2/100.00 | 4.checkout.completed u0 c0.00 s- d0/-',
          'the next refresh counts h2''s click');
select is(tally.set_min_group_size(3), 1, 'the minimum group size raised to 3');
select is(tests.window_of(:steps, '24h'),
          '1.paywall.viewed u0 c- s- d0/- | 2.paywall.clicked u0 c- s- d0/- | '
          '3.checkout.started u0 c- s- d0/- | 4.checkout.completed u0 c- s- d0/-',
          'the precomputed steps of two users are hidden like any other small group');
select is(tally.set_min_group_size(1), 3, 'every group shown again');
select is(tally.drop_funnel('{paywall.clicked,checkout.started}'), true, 'a declared funnel is dropped');
select is(tally.drop_funnel('{paywall.clicked,checkout.started}'), false, 'dropping it again changes nothing');
select is((select count(*)::int from tally.refresh_analytics()), 10, 'refreshed after the drop');
select ok(not exists (select from tally.admin_funnel_mv m where m.steps = '{paywall.clicked,checkout.started}')
          and tests.same_as_exact('{paywall.clicked,checkout.started}') = 'none',
          'the refresh no longer precomputes it; it is computed at call time, with the same answers');

-- The boundaries of the declared funnels, and who may change them.
select is(tally.declare_funnel(array(select 'k' || g from generate_series(1, 20) g)), true, '20 steps may be declared');
select throws_ok($$select tally.declare_funnel(array(select 'k' || g from generate_series(1, 21) g))$$, 'PT011', null,
                 '21 steps are refused');
select throws_ok($$insert into tally.dashboard_funnels (steps) values ('{paywall.viewed,NULL}')$$, '23514', null,
                 'even the owner cannot store a funnel with a null step');
set local role tally_analyst;
select ok((select count(*) = 4 from tally.admin_funnel_window(:steps, 'all')), 'an analyst reads the dashboard funnel');
select ok((select count(*) >= 1 from tally.dashboard_funnels), 'and sees which funnels are declared');
select throws_ok($$select tally.declare_funnel('{export}')$$, '42501', null, 'an analyst cannot declare a funnel');
select throws_ok($$select tally.drop_funnel('{paywall.viewed,paywall.clicked,checkout.started,checkout.completed}')$$, '42501', null, 'nor drop one');
select throws_ok($$delete from tally.dashboard_funnels$$, '42501', null, 'nor change the table');
select throws_ok($$select * from tally.admin_funnel_mv$$, '42501', null, 'nor read the view (every step, however small)');
reset role;
set local role tally_reader;
select throws_ok($$select * from tally.admin_funnel_window('{paywall.viewed}', 'all')$$, '42501', null,
                 'a reader cannot read the platform funnel');
reset role;

select throws_ok($$select * from tally.admin_funnel('{paywall.viewed,paywall.viewed}')$$, 'PT011',
                 'steps must be 1 to 20 distinct, non-empty kinds (got {paywall.viewed,paywall.viewed})',
                 'repeated steps are refused');

select * from finish();
rollback;
