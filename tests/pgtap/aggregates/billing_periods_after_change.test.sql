-- A change of billing anchor day or time zone re-buckets the user's merged history in the same
-- transaction: the open billing period, the local days and the quota check are exact at once
-- (merged and pending usage alike), not only after someone runs tally.rebuild.
begin;
select plan(19);
set local timezone = 'UTC';

select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 30000}', true)$$, 'free plan: 30000 chars a period');

-- a: periods from the 1st; 10000 chars on Nov 5 and 8000 on Nov 14 (merged), 5000 on Nov 20 (pending).
select lives_ok($$select tally.set_user_settings('a', 'UTC', 1)$$, 'a bills from the 1st');
select ok(tests.tts('a1', 'a', '2026-11-05 10:00+00', 10000) and tests.tts('a2', 'a', '2026-11-14 10:00+00', 8000),
          'a: 10000 chars on Nov 5, 8000 on Nov 14');
select is(tally.merge_pending(), 2, 'merged');
select ok(tests.tts('a3', 'a', '2026-11-20 10:00+00', 5000), 'a: 5000 chars on Nov 20 (pending)');
select is(tally.check_quota('a', 'tts', 7000, '2026-11-21 12:00+00'), 0::numeric,
          'before the change: 23000 used in Nov 1..Dec 1, 7000 more fit exactly');

-- Periods from the 13th: Oct 13..Nov 13 holds the 10000 of Nov 5; Nov 13..Dec 13 holds 8000 + 5000.
select lives_ok($$select tally.set_user_settings('a', 'UTC', 13)$$, 'a now bills from the 13th');
select is(tests.period_of('a', '2026-11-21 12:00+00') || ' / ' || tests.period_of('a', '2026-11-10 12:00+00'),
          '2026-11-13..2026-12-13 tts e2 q13000 d14000 c0.13 / 2026-10-13..2026-11-13 tts e1 q10000 d7000 c0.1',
          'the open period holds the merged 8000 and the pending 5000 at once; the 10000 of Nov 5 is in the period before');
select is(tally.check_quota('a', 'tts', 17000, '2026-11-21 12:00+00'), 0::numeric,
          'same transaction: 13000 used, 17000 more fit exactly');
select throws_ok($$select tally.check_quota('a', 'tts', 17001, '2026-11-21 12:00+00')$$, 'PT012', null,
                 'same transaction: one more char than the limit is refused');
select is(tally.merge_pending(), 1, 'the pending delta is merged with the new anchor');
select is(tests.period_of('a', '2026-11-21 12:00+00') || ' / ' || tests.period_of('a', '2026-11-10 12:00+00'),
          '2026-11-13..2026-12-13 tts e2 q13000 d14000 c0.13 / 2026-10-13..2026-11-13 tts e1 q10000 d7000 c0.1',
          'the same periods after the merge');
select throws_ok($$select tally.check_quota('a', 'tts', 17001, '2026-11-21 12:00+00')$$, 'PT012', null,
                 'after the merge the check still refuses what would exceed the limit');

-- z: periods from the 15th in UTC; 100 chars at 20:00 UTC on Nov 14 and 400 at 03:00 UTC on Nov 15 (merged),
-- 50 at 04:30 UTC on Nov 15 (pending). In New York (UTC-5) all three fall on Nov 14, in the period before the 15th.
select ok(tests.tts('z1', 'z', '2026-11-14 20:00+00', 100) and tests.tts('z2', 'z', '2026-11-15 03:00+00', 400)
          and exists (select from tally.set_user_settings('z', 'UTC', 15)), 'z: 100 chars on Nov 14, 400 on Nov 15 (UTC), bills from the 15th');
select is(tally.merge_pending(), 2, 'merged');
select ok(tests.tts('z3', 'z', '2026-11-15 04:30+00', 50), 'z: 50 chars at 04:30 UTC on Nov 15 (pending)');
select lives_ok($$select tally.set_user_settings('z', 'America/New_York', 15)$$, 'z moves to New York');
select is(tests.period_of('z', '2026-11-15 04:45+00') || ' / ' || tests.period_of('z', '2026-11-15 06:00+00'),
          '2026-10-15..2026-11-15 tts e3 q550 d21000 c0.0055 / ',
          'at 23:45 on Nov 14 in New York all 550 chars are in the period before the 15th; at 01:00 on Nov 15 a new empty one starts');
select is(tests.daily_of('z', 'kind', '2026-11-13', '2026-11-16') || ' / ' || (select count(*) || ' drifted' from tally.verify() where drifted > 0),
          '2026-11-14 tts e3 q550 f0 / 0 drifted',
          'the local days moved too: all three events are on Nov 14 in New York, and verify finds no drift');

select * from finish();
rollback;
