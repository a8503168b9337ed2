-- Plans and subscriptions: validation, the default plan, the plan in force at a moment (plan changes,
-- cancellations), months subscribed, highest tier and revenue (monthly anniversaries, leap years).
begin;
select plan(24);
set local timezone = 'UTC';

-- Subscriptions as one line.
create function tests.subs_of(u text, at timestamptz)
returns text language sql as $$
  select format('plan=%s since=%s subs=%s months=%s tier=%s (%s) revenue=%s', coalesce(s.current_plan, '-'),
                coalesce(s.subscribed_since::text, '-'), s.subscriptions, s.months_subscribed,
                coalesce(s.highest_tier::text, '-'), coalesce(s.highest_plan, '-'), trim_scale(s.revenue))
    from tally.subscription_summary(u, at) s
$$;

select throws_ok($$select tally.upsert_plan('Pro Plan', 1, 10)$$, 'PT011', null, 'a plan name must be an identifier');
select throws_ok($$select tally.upsert_plan('pro', 1, -1)$$, 'PT011', null, 'a negative price is refused');
select throws_ok($$select tally.upsert_plan('pro', 1, 10, '{"tts": -5}')$$, 'PT011',
                 'limit of kind ''tts'' must be a non-negative integer or null (got -5)', 'a negative limit is refused, naming the kind');
select throws_ok($$select tally.upsert_plan('pro', 1, 10, '[1]')$$, 'PT011', null, 'limits must be an object');
select is(tests.error_of($$select tally.upsert_plan('pro', null, 10)$$),
          'PT011: tier must be a non-negative integer (got null) []', 'a missing tier is refused');

select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 20000, "ocr": 10}', true, 'Free')$$, 'free plan (default)');
select lives_ok($$select tally.upsert_plan('pro', 1, 10, '{"tts": 1000000, "ocr": null}')$$, 'pro plan');
select lives_ok($$select tally.upsert_plan('max', 2, 30, '{}')$$, 'max plan (unlimited)');
select is((select string_agg(format('%s:%s', plan, monthly_limit), ' ' order by plan, kind) from tally.plan_limits),
          'free:10 free:20000 pro:1000000', 'limits are stored per plan and kind; null means unlimited (no row)');
select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 30000}', true)$$, 'free plan updated');
select is((select string_agg(format('%s:%s:%s', l.plan, l.kind, l.monthly_limit), ' ') from tally.plan_limits l where l.plan = 'free'),
          'free:tts:30000', 'the given limits replace the old ones');
select lives_ok($$select tally.upsert_plan('basic', 0, 0, '{}', true)$$, 'basic becomes the default plan');
select is((select string_agg(plan, ' ') from tally.plans where is_default), 'basic', 'only one default plan');
select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 30000}', true)$$, 'free is the default again');

-- Subscription history of u: pro from Mar 15, max from May 10 (plan change), cancelled Jul 1.
select is(tally.plan_at('u', '2026-03-01 00:00+00'), 'free', 'without a subscription the default plan is in force');
select lives_ok($$select tally.start_subscription('u', 'pro', '2026-03-15 00:00+00')$$, 'u subscribes to pro');
select lives_ok($$select tally.start_subscription('u', 'max', '2026-05-10 00:00+00')$$, 'u upgrades to max');
select is(tally.end_subscription('u', '2026-07-01 00:00+00'), true, 'u cancels');
select is(tally.end_subscription('u', '2026-08-01 00:00+00'), false, 'nothing left to cancel');
select is(concat_ws(' ', tally.plan_at('u', '2026-03-14 23:59:59+00'), tally.plan_at('u', '2026-03-15 00:00+00'),
                    tally.plan_at('u', '2026-05-09 23:59+00'), tally.plan_at('u', '2026-05-10 00:00+00'),
                    tally.plan_at('u', '2026-06-30 23:59+00'), tally.plan_at('u', '2026-07-01 00:00+00')),
          'free pro pro max max free', 'the plan in force changes at each start and end');
select is(tests.error_of($$select tally.start_subscription('u', 'pro', '2026-04-01 00:00+00')$$),
          'PT011: started_at 2026-04-01 00:00:00+00 must be after the start of the user''s latest subscription (2026-05-10 00:00:00+00) []',
          'a subscription cannot start inside the history');
-- pro: Mar 15 and Apr 15 charged (2 x 10); max: May 10 and Jun 10 charged (2 x 30).
select is(tests.subs_of('u', '2026-11-21 12:00+00') || ' / ' || tests.subs_of('u', '2026-06-01 00:00+00'),
          'plan=free since=- subs=2 months=4 tier=2 (max) revenue=80 / plan=max since=2026-03-15 00:00:00+00 subs=2 months=3 tier=2 (max) revenue=50',
          'months subscribed, highest tier and revenue to date; a plan change continues the run');
select is(tests.subs_of('nobody', '2026-11-21 12:00+00'), 'plan=free since=- subs=0 months=0 tier=- (-) revenue=0',
          'a user without subscriptions');

-- Month arithmetic clamps to month ends, leap year included: Jan 31, Feb 29, Mar 31, ...
select is(concat_ws(' ', tally._months_started('2024-01-31', '2024-02-29'), tally._months_started('2024-01-31', '2024-02-29 00:00:01'),
                    tally._months_started('2024-01-31', '2024-03-31'), tally._months_started('2024-01-31', '2024-03-31 00:00:01'),
                    tally._months_started('2024-02-29', '2025-02-28'), tally._months_started('2024-02-29', '2025-02-28 00:00:01'),
                    tally._months_started('2024-01-31', '2024-01-31')),
          '1 2 2 3 12 13 0', 'billing months start on Jan 31, Feb 29, Mar 31 and Feb 28 of a common year');

select * from finish();
rollback;
