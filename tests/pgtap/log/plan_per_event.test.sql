-- The plan in force is recorded with each event on every write path, fixed when the event is
-- recorded, and usage by plan is a dimension like any other.
begin;
select plan(12);

select tally.upsert_plan('free', 0, 0, is_default => true);
select tally.upsert_plan('pro', 2, 20);

-- Subscribed to pro from 2026-11-10 12:00 UTC; free (the default plan) before.
select tally.start_subscription('u1', 'pro', '2026-11-10 12:00:00+00');
select tests.tts('before', 'u1', '2026-11-10 11:59:59+00', 100);
select tests.tts('after', 'u1', '2026-11-10 12:00:00+00', 40);
select tally.record_usage('fn', 'u1', 'tts', 7, '2026-11-11 08:00:00+00');
select tests.batch(array['b1', 'b2'], 'u1', array[5, 3]::bigint[],
                   array['2026-11-09 00:00:00+00', '2026-11-12 00:00:00+00']::timestamptz[]);
insert into tally.usage_events (event_id, user_id, kind, quantity, occurred_at)
values ('ins', 'u1', 'tts', 1, '2026-11-13 00:00:00+00');

select results_eq(
  $$select event_id, plan from tally.usage_events where user_id = 'u1' order by event_id$$,
  $$values ('after', 'pro'), ('b1', 'free'), ('b2', 'pro'), ('before', 'free'), ('fn', 'pro'), ('ins', 'pro')$$,
  'the trigger, record_usage and the batch path record the plan in force at occurred_at');

select is(tests.lifetime_of('u1', 'plan'), 'free e2 q105 d7000 c0.001 f0 | pro e4 q51 d7000 c0.0004 f0',
          'usage by plan is exact at commit (pending deltas)');
select tally.merge_pending();
select is(tests.lifetime_of('u1', 'plan'), 'free e2 q105 d7000 c0.001 f0 | pro e4 q51 d7000 c0.0004 f0',
          'and the same after the merge');
select is(tests.daily_of('u1', 'plan', '2026-11-09', '2026-11-13'),
          '2026-11-09 free e1 q5 f0 | 2026-11-10 free e1 q100 f0 | 2026-11-10 pro e1 q40 f0 | 2026-11-11 pro e1 q7 f0 | 2026-11-12 pro e1 q3 f0 | 2026-11-13 pro e1 q1 f0',
          'daily usage by plan');

-- A subscription started later, backdated over the events, does not move usage already recorded.
select tally.start_subscription('u1', 'free', '2026-11-11 00:00:00+00');
select is((select plan from tally.usage_events where event_id = 'b2'), 'pro',
          'a recorded event keeps its plan when the subscription history changes later');
select tests.tts('late', 'u1', '2026-11-12 00:00:00+00', 2);
select is((select plan from tally.usage_events where event_id = 'late'), 'free',
          'an event recorded after the change gets the plan now in force at its time');

-- (free: before 100 + b1 5; pro: after 40 + fn 7 + b2 3 + ins 1. Then late 2 joins free and
-- the reversal takes before's 100 and its event back out of free.)
-- A correction carries the plan in force at its own occurred_at (reverse_usage keeps the original's time).
select tally.reverse_usage('u1', 'before', 'rev-before');
select is((select plan from tally.usage_events where event_id = 'rev-before'), 'free',
          'a reversal at the original''s time carries the original''s plan');
select tally.merge_pending();
select is(tests.lifetime_of('u1', 'plan'), 'free e2 q7 d7000 c0.00002 f0 | pro e4 q51 d7000 c0.0004 f0',
          'the reversal nets out under the original''s plan');

-- A user with no subscription and no default plan has no plan: no value in the plan dimension.
update tally.plans set is_default = false;
select tests.tts('np', 'u2', '2026-11-10 00:00:00+00', 9);
select is((select plan from tally.usage_events where event_id = 'np'), null, 'no subscription and no default plan: NULL');
select is(tests.lifetime_of('u2', 'plan'), '', 'and no row in the plan dimension');

-- The plan column is set by the database, never by a writer.
select throws_ok(
  $$set local role tally_writer;
    insert into tally.usage_events (event_id, user_id, kind, plan) values ('forged', 'u3', 'tts', 'enterprise')$$,
  '42501', null, 'a writer cannot set the plan');
reset role;

-- Rebuild from the log reproduces the plan dimension, and verify agrees.
delete from tally.user_totals where dimension = 'plan';
delete from tally.user_daily where dimension = 'plan';
select tally.rebuild();
select is(tests.lifetime_of('u1', 'plan'), 'free e2 q7 d7000 c0.00002 f0 | pro e4 q51 d7000 c0.0004 f0',
          'rebuild restores usage by plan from the log');

select * from finish();
rollback;
