-- Funnels over ordered kinds from the trigger-maintained first-reached table: users must reach the steps in order
-- (skipping a step or doing one out of order stops them), per timeframe, with conversion and drop-off; a failed event
-- is not a step reached; pending (not yet merged) events count, so a funnel is exact at commit.
begin;
select plan(11);

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
select is((select count(*)::int from tally.user_first_reached), 21, 'the merge keeps one first-reached row per user and kind (failures excluded)');
select ok(tests.step('f6d', 'f6', 'checkout.completed', '2026-11-12 10:03+00'), 'f6 completes after the merge (pending)');

\set steps '''{paywall.viewed,paywall.clicked,checkout.started,checkout.completed}'''
select is(tests.funnel_of(:steps),
          '1.paywall.viewed u6 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u5 c83.33 s83.33 d1/16.67 | '
          '3.checkout.started u4 c66.67 s80.00 d1/20.00 | 4.checkout.completed u3 c50.00 s75.00 d1/25.00',
          'all time: f3 out of order, f2 skipped a step, f4 failed; f6''s pending completion counts');
select is(tests.funnel_of(:steps, '2026-11-01', '2026-11-11'),
          '1.paywall.viewed u4 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u3 c75.00 s75.00 d1/25.00 | '
          '3.checkout.started u2 c50.00 s66.67 d1/33.33 | 4.checkout.completed u1 c25.00 s50.00 d1/50.00',
          'Nov 1-10: users who first viewed in the timeframe (not f5, first seen in October; not f6)');
select is(tests.funnel_of(:steps, '2026-11-01'),
          '1.paywall.viewed u5 c100.00 s100.00 d0/0.00 | 2.paywall.clicked u4 c80.00 s80.00 d1/20.00 | '
          '3.checkout.started u3 c60.00 s75.00 d1/25.00 | 4.checkout.completed u2 c40.00 s66.67 d1/33.33',
          'from Nov 1 on');
select is(tests.funnel_of('{checkout.completed,paywall.viewed}'),
          '1.checkout.completed u5 c100.00 s100.00 d0/0.00 | 2.paywall.viewed u0 c0.00 s0.00 d5/100.00',
          'order matters: nobody viewed the paywall after completing');
select is(tests.funnel_of('{paywall.viewed,export}'),
          '1.paywall.viewed u6 c100.00 s100.00 d0/0.00 | 2.export u0 c0.00 s0.00 d6/100.00', 'a kind nobody reached');
select throws_ok($$select * from tally.admin_funnel('{paywall.viewed,paywall.viewed}')$$, 'PT011',
                 'steps must be 1 to 20 distinct, non-empty kinds (got {paywall.viewed,paywall.viewed})',
                 'repeated steps are refused');

select * from finish();
rollback;
