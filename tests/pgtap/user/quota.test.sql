-- Limits and forecast: utilization, run rate, projection, limit date, recommended plan, and the hard
-- quota check (PT012, lock per user and kind, billable usage of the period only, plan change mid-period).
begin;
select plan(24);
set local timezone = 'UTC';

create function tests.fc(u text, at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select string_agg(format('%s %s %s..%s used=%s quota=%s left=%s util=%s rate=%s proj=%s on=%s %s', f.kind, coalesce(f.plan, '-'),
                           f.period_start, f.period_end, f.used, coalesce(f.quota::text, '-'), coalesce(f.remaining::text, '-'),
                           coalesce(f.utilization_pct::text, '-'), f.run_rate, f.projected,
                           coalesce(f.reaches_limit_on::text, '-'), f.status), ' | ' order by f.kind)
    from tally.quota_forecast(u, 7, at) f
$$;

create function tests.rec(u text, at timestamptz default '2026-11-21 12:00+00')
returns text language sql as $$
  select coalesce((select format('%s tier %s at %s (now %s, current %s)', r.plan, r.tier, trim_scale(r.monthly_price),
                                 coalesce(r.current_plan, '-'), r.is_current)
                     from tally.recommended_plan(u, 7, at) r), 'none')
$$;

select is(tests.fc('nobody'), null, 'no plans, no usage: nothing to forecast');
select is(tally.check_quota('nobody', 'tts', 1000000), null::numeric, 'no plan: unlimited, the check passes');
select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 1500, "ocr": 10}', true)
                  union all select tally.upsert_plan('basic', 1, 5, '{"tts": 5000}')
                  union all select tally.upsert_plan('pro', 2, 10, '{"ocr": 1000}')$$, 'plans free, basic and pro');
select is(tests.fc('nobody'),
          'ocr free 2026-11-01..2026-12-01 used=0 quota=10 left=10 util=0.0 rate=0.00 proj=0 on=- ok | tts free 2026-11-01..2026-12-01 used=0 quota=1500 left=1500 util=0.0 rate=0.00 proj=0 on=- ok',
          'empty user: the default plan''s kinds, nothing used');
select is(tests.rec('nobody'), 'free tier 0 at 0 (now free, current t)', 'empty user: the free plan suffices');

-- f: 300 chars on Nov 2, then 100 a day Nov 15..21 (run rate 100/day); failures and non-billable usage do not count.
select ok(tests.tts('f0', 'f', '2026-11-02 10:00+00', 300)
      and (select bool_and(tests.tts('f' || d, 'f', '2026-11-14 10:00+00'::timestamptz + d * interval '1 day', 100))
             from generate_series(1, 7) d)
      and tests.tts('fx', 'f', '2026-11-20 10:00+00', 2000, status => 'failed')
      and tally.record_usage('fn', 'f', 'tts', 2000, '2026-11-20 11:00+00', billable => false),
   'f: 1000 billable chars this period, a failure and non-billable usage');
select is(tests.fc('f'),
          'ocr free 2026-11-01..2026-12-01 used=0 quota=10 left=10 util=0.0 rate=0.00 proj=0 on=- ok | tts free 2026-11-01..2026-12-01 used=1000 quota=1500 left=500 util=66.7 rate=385.71 proj=4664 on=2026-11-22 will_reach',
          'f: the run rate counts all succeeded usage of the last 7 days, the period only billable usage (pending)');
select is(tests.rec('f'), 'basic tier 1 at 5 (now free, current f)', 'f: basic is the cheapest plan covering 4664 chars');

select is(tally.check_quota('f', 'tts', 500, '2026-11-21 12:00+00'), 0::numeric, 'f: 500 more chars fit exactly');
select is((select count(*)::int from pg_locks l
             where l.locktype = 'transactionid' and l.pid = pg_backend_pid() and l.mode = 'ExclusiveLock')
          + (select count(*)::int from tally.user_locks where user_id = 'f' and scope = 'quota:tts'),
          2, 'the check locks the owner-only row (user, quota:kind) until the transaction ends');
select throws_ok($$select tally.check_quota('f', 'tts', 501, '2026-11-21 12:00+00')$$, 'PT012',
                 'quota exceeded: 1000 of tts used in the period starting 2026-11-01, 501 more would exceed the 1500 limit of plan free',
                 'f: 501 more would exceed the free limit');
select is(tally.check_quota('f', 'llm', 1000000000, '2026-11-21 12:00+00'), null::numeric, 'a kind without a limit is unlimited');
select throws_ok($$select tally.check_quota('f', 'tts', -1)$$, 'PT011', 'amount must be an integer between 0 and 1e15 (got -1)',
                 'a negative amount is refused');
select throws_ok($$select tally.check_quota('', 'tts', 1)$$, 'PT011', 'user_id is required', 'a user is required');

-- Periods anchored on the 15th: usage of the old period does not count.
select lives_ok($$select tally.set_user_settings('b', 'UTC', 15)$$, 'b bills from the 15th');
select ok(tests.tts('b1', 'b', '2026-11-14 23:00+00', 1400) and tests.tts('b2', 'b', '2026-11-15 01:00+00', 1000), 'b: 1400 chars on Nov 14, 1000 on Nov 15');
select is(tally.check_quota('b', 'tts', 500, '2026-11-21 12:00+00') || ' ' || tally.check_quota('b', 'tts', 100, '2026-11-14 12:00+00'),
          '0 0', 'b: each period counts only its own usage');

select is(tally.merge_pending(), 12, 'merge folds the twelve deltas');
select is(tests.fc('f'),
          'ocr free 2026-11-01..2026-12-01 used=0 quota=10 left=10 util=0.0 rate=0.00 proj=0 on=- ok | tts free 2026-11-01..2026-12-01 used=1000 quota=1500 left=500 util=66.7 rate=385.71 proj=4664 on=2026-11-22 will_reach',
          'f: the same forecast after the merge');
select ok(tests.tts('f8', 'f', '2026-11-21 11:00+00', 500), 'f: 500 more chars (pending on top of the merged period)');
select is(tests.fc('f'),
          'ocr free 2026-11-01..2026-12-01 used=0 quota=10 left=10 util=0.0 rate=0.00 proj=0 on=- ok | tts free 2026-11-01..2026-12-01 used=1500 quota=1500 left=0 util=100.0 rate=457.14 proj=5843 on=2026-11-21 reached',
          'f: the limit is reached today');
select throws_ok($$select tally.check_quota('f', 'tts', 1, '2026-11-21 12:00+00')$$, 'PT012', null, 'f: not one more char');

-- Subscribing mid-month: pro from Nov 10 has no tts limit, and billing periods now start on the
-- 10th; before it the free limit applied to the period Oct 10..Nov 10 (300 chars used on Nov 2).
-- The forecast projects 1200 used + 457.14 a day for the rest of Nov 21 and the 18 days after it up to Dec 10.
select lives_ok($$select tally.start_subscription('f', 'pro', '2026-11-10 00:00+00')$$, 'f upgrades to pro on Nov 10');
select is(tally.check_quota('f', 'tts', 100000, '2026-11-21 12:00+00') is null
          and tally.check_quota('f', 'tts', 1200, '2026-11-09 12:00+00') = 0
          and tests.error_of($$select tally.check_quota('f', 'tts', 1201, '2026-11-09 12:00+00')$$) like 'PT012: %'
          and tests.fc('f') = 'ocr pro 2026-11-10..2026-12-10 used=0 quota=1000 left=1000 util=0.0 rate=0.00 proj=0 on=- ok | tts pro 2026-11-10..2026-12-10 used=1200 quota=- left=- util=- rate=457.14 proj=9657 on=- unlimited',
          true, 'f on pro: tts unlimited in the period from Nov 10 (1200 used); at Nov 9 the free limit applied to Oct 10..Nov 10');

select * from finish();
rollback;
