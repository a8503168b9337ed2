-- Billing periods start on the user's anchor day (local midnight) and run one month; a new period
-- is a new key, so it starts at zero. Only billable, succeeded (or reversed) usage counts.
begin;
select plan(20);

select lives_ok($$select tally.set_user_settings('u1', 'UTC', 15)$$, 'u1 bills from the 15th');
select lives_ok($$select tally.set_user_settings('u2', 'UTC', 15)$$, 'u2 bills from the 15th');
select lives_ok($$select tally.set_user_settings('la', 'America/Los_Angeles', 15)$$, 'la bills from the 15th, Los Angeles time');

select ok(tests.tts('p1', 'u1', '2026-10-14 23:59:00+00', 100), 'u1: 100 chars on Oct 14');
select ok(tests.tts('p2', 'u1', '2026-10-15 00:00:00+00', 200), 'u1: 200 chars at the start of Oct 15');
select ok(tests.tts('p3', 'u1', '2026-11-14 12:00:00+00', 300), 'u1: 300 chars on Nov 14');
select ok(tests.tts('p4', 'u1', '2026-11-15 00:00:00+00', 400), 'u1: 400 chars at the start of Nov 15');
select ok(tally.record_usage('p5', 'u1', 'ocr', 3, '2026-10-20 00:00:00+00', cost => 0.03)
      and tally.record_usage('p6', 'u1', 'tts', 5000, '2026-10-20 00:00:00+00', billable => false), 'u1: 3 ocr pages and 5000 non-billable chars on Oct 20');
select ok(tests.tts('q1', 'u2', '2026-11-14 10:00:00+00', 50), 'u2: 50 chars on Nov 14');
select ok(tests.tts('l1', 'la', '2026-11-15 05:00:00+00', 60), 'la: 60 chars at 21:00 PST on Nov 14');

select is(tests.period_of('u1', '2026-10-14 12:00:00+00') || ' / ' || tests.period_of('u1', '2026-10-20 00:00:00+00') || ' / '
          || tests.period_of('u1', '2026-11-15 00:00:00+00'),
          '2026-09-15..2026-10-15 tts e1 q100 d7000 c0.001 / 2026-10-15..2026-11-15 ocr e1 q3 d0 c0.03 | 2026-10-15..2026-11-15 tts e2 q500 d14000 c0.005 / 2026-11-15..2026-12-15 tts e1 q400 d7000 c0.004',
          'the 14th and the 15th are in different periods; non-billable usage is left out (pending)');
select is(tests.period_of('u2', '2026-11-15 00:00:00+00'), '', 'u2''s new period starts at zero (pending)');
select is(tests.period_of('la', '2026-11-15 06:00:00+00') || ' / ' || tests.period_of('la', '2026-11-15 09:00:00+00'),
          '2026-10-15..2026-11-15 tts e1 q60 d7000 c0.0006 / ',
          'la: 22:00 PST on Nov 14 is the old period, 01:00 PST on Nov 15 a new empty one (pending)');
select is(tests.lifetime_of('u1', 'kind'), 'ocr e1 q3 d c0.03 f0 | tts e5 q6000 d28000 c0.01 f0',
          'lifetime counts the non-billable usage (pending)');

select is(tally.merge_pending(), 8, 'merge folds the eight deltas');
select is(tests.period_of('u1', '2026-10-14 12:00:00+00') || ' / ' || tests.period_of('u1', '2026-10-20 00:00:00+00') || ' / '
          || tests.period_of('u1', '2026-11-15 00:00:00+00'),
          '2026-09-15..2026-10-15 tts e1 q100 d7000 c0.001 / 2026-10-15..2026-11-15 ocr e1 q3 d0 c0.03 | 2026-10-15..2026-11-15 tts e2 q500 d14000 c0.005 / 2026-11-15..2026-12-15 tts e1 q400 d7000 c0.004',
          'u1''s periods are the same after the merge');
select is(tests.period_of('u2', '2026-11-15 00:00:00+00'), '', 'u2''s new period is still zero after the merge');
select is(tests.period_of('la', '2026-11-15 06:00:00+00') || ' / ' || tests.period_of('la', '2026-11-15 09:00:00+00'),
          '2026-10-15..2026-11-15 tts e1 q60 d7000 c0.0006 / ', 'la''s periods are the same after the merge');

-- Usage in the new period counts from zero, on top of merged rollups.
select ok(tests.tts('q2', 'u2', '2026-11-16 10:00:00+00', 70), 'u2: 70 chars on Nov 16');
select is(tests.period_of('u2', '2026-11-16 00:00:00+00') || ' / ' || tests.period_of('u2', '2026-11-14 00:00:00+00'),
          '2026-11-15..2026-12-15 tts e1 q70 d7000 c0.0007 / 2026-10-15..2026-11-15 tts e1 q50 d7000 c0.0005',
          'u2''s new period holds only the new usage; the old one is unchanged');

select * from finish();
rollback;
