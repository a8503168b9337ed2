-- Local days: daily rollups and billing periods use the user's time zone, including DST changes.
-- America/Los_Angeles is UTC-8 (PST) / UTC-7 (PDT); Pacific/Auckland is UTC+13 (NZDT) in November.
begin;
select plan(25);

select lives_ok($$select tally.set_user_settings('la', 'America/Los_Angeles', 1)$$, 'la lives in Los Angeles');
select lives_ok($$select tally.set_user_settings('nz', 'Pacific/Auckland', 1)$$, 'nz lives in Auckland');

-- Around local midnight (quantities are powers of two so every sum names its events).
select ok(tests.tts('la1', 'la', '2026-11-09 23:30:00-08', 1)
      and tests.tts('la2', 'la', '2026-11-10 00:30:00-08', 2)
      and tests.tts('la3', 'la', '2026-11-10 23:59:00-08', 4)
      and tests.tts('la4', 'la', '2026-11-11 00:00:00-08', 8), 'la: four events around Los Angeles midnights');
select ok(tests.tts('nz1', 'nz', '2026-11-09 23:30:00+13', 1)
      and tests.tts('nz2', 'nz', '2026-11-10 00:30:00+13', 2)
      and tests.tts('nz3', 'nz', '2026-11-10 10:59:00+00', 4)   -- 23:59 NZDT on the 10th
      and tests.tts('nz4', 'nz', '2026-11-10 11:00:00+00', 8)   -- 00:00 NZDT on the 11th
      and tests.tts('nz5', 'nz', '2026-10-31 23:30:00+13', 32)  -- 10:30 UTC on Oct 31, still October locally
      and tests.tts('nz6', 'nz', '2026-11-01 00:30:00+13', 16), -- 11:30 UTC on Oct 31, November locally
       'nz: six events around Auckland midnights');
-- A user without settings counts in UTC: the same instants as la1..la4.
select ok(tests.tts('ut1', 'ut', '2026-11-09 23:30:00-08', 1)
      and tests.tts('ut2', 'ut', '2026-11-10 00:30:00-08', 2)
      and tests.tts('ut3', 'ut', '2026-11-10 23:59:00-08', 4)
      and tests.tts('ut4', 'ut', '2026-11-11 00:00:00-08', 8), 'ut: the same four instants, UTC user');
-- Los Angeles falls back on 2026-11-01 (01:00-01:59 happens twice; the day has 25 hours).
select ok(tests.tts('fb1', 'la', '2026-10-31 23:59:00-07', 16)
      and tests.tts('fb2', 'la', '2026-11-01 00:30:00-07', 32)
      and tests.tts('fb3', 'la', '2026-11-01 01:30:00-07', 64)    -- first 01:30 (PDT)
      and tests.tts('fb4', 'la', '2026-11-01 01:30:00-08', 128)   -- second 01:30 (PST)
      and tests.tts('fb5', 'la', '2026-11-01 23:30:00-08', 256)   -- 07:30 UTC on Nov 2
      and tests.tts('fb6', 'la', '2026-11-02 00:30:00-08', 512), 'la: six events around the fall-back day');
-- Los Angeles springs forward on 2026-03-08 (02:00-02:59 does not exist; the day has 23 hours).
select ok(tests.tts('sf1', 'la', '2026-03-07 23:30:00-08', 1000)
      and tests.tts('sf2', 'la', '2026-03-08 01:59:00-08', 2000)
      and tests.tts('sf3', 'la', '2026-03-08 03:00:00-07', 3000)  -- one minute after sf2
      and tests.tts('sf4', 'la', '2026-03-08 23:30:00-07', 4000)  -- 06:30 UTC on Mar 9
      and tests.tts('sf5', 'la', '2026-03-09 00:15:00-07', 5000), -- 07:15 UTC on Mar 9 (23:15 if PST were kept)
       'la: five events around the spring-forward day');

select is(tests.daily_of('la', 'kind', '2026-11-08', '2026-11-12'),
          '2026-11-09 tts e1 q1 f0 | 2026-11-10 tts e2 q6 f0 | 2026-11-11 tts e1 q8 f0',
          'la: events land on their Los Angeles days (pending)');
select is(tests.daily_of('la', 'kind', '2026-11-10', '2026-11-10'), '2026-11-10 tts e2 q6 f0',
          'la: the day range is in local days (pending)');
select is(tests.daily_of('nz', 'kind', '2026-10-30', '2026-11-12'),
          '2026-10-31 tts e1 q32 f0 | 2026-11-01 tts e1 q16 f0 | 2026-11-09 tts e1 q1 f0 | 2026-11-10 tts e2 q6 f0 | 2026-11-11 tts e1 q8 f0',
          'nz: events land on their Auckland days (pending)');
select is(tests.daily_of('ut', 'kind', '2026-11-08', '2026-11-12'), '2026-11-10 tts e2 q3 f0 | 2026-11-11 tts e2 q12 f0',
          'ut: the same instants land on UTC days (pending)');
select is(tests.daily_of('la', 'kind', '2026-10-31', '2026-11-02'),
          '2026-10-31 tts e1 q16 f0 | 2026-11-01 tts e4 q480 f0 | 2026-11-02 tts e1 q512 f0',
          'la: the 25-hour fall-back day holds both 01:30s and 23:30 PST (pending)');
select is(tests.daily_of('la', 'kind', '2026-03-07', '2026-03-09'),
          '2026-03-07 tts e1 q1000 f0 | 2026-03-08 tts e3 q9000 f0 | 2026-03-09 tts e1 q5000 f0',
          'la: the 23-hour spring-forward day ends at 07:00 UTC (pending)');

-- Billing periods start at local midnight too.
select is(tests.period_of('la', '2026-11-01 06:30:00+00'), '2026-10-01..2026-11-01 tts e1 q16 d7000 c0.00016',
          'la at 23:30 PDT on Oct 31 is in the October period (pending)');
select is(tests.period_of('la', '2026-11-01 08:00:00+00'), '2026-11-01..2026-12-01 tts e9 q1007 d63000 c0.01007',
          'la at 01:00 PDT on Nov 1 is in the November period (pending)');
select is(tests.period_of('nz', '2026-10-31 10:45:00+00'), '2026-10-01..2026-11-01 tts e1 q32 d7000 c0.00032',
          'nz at 23:45 NZDT on Oct 31 is in the October period (pending)');
select is(tests.period_of('nz', '2026-10-31 12:00:00+00'), '2026-11-01..2026-12-01 tts e5 q31 d35000 c0.00031',
          'nz at 01:00 NZDT on Nov 1 is in the November period (pending)');

select is(tally.merge_pending(), 25, 'merge folds the 25 deltas');
select is(tests.daily_of('la', 'kind', '2026-11-08', '2026-11-12'),
          '2026-11-09 tts e1 q1 f0 | 2026-11-10 tts e2 q6 f0 | 2026-11-11 tts e1 q8 f0', 'la days are the same after the merge');
select is(tests.daily_of('nz', 'kind', '2026-10-30', '2026-11-12'),
          '2026-10-31 tts e1 q32 f0 | 2026-11-01 tts e1 q16 f0 | 2026-11-09 tts e1 q1 f0 | 2026-11-10 tts e2 q6 f0 | 2026-11-11 tts e1 q8 f0',
          'nz days are the same after the merge');
select is(tests.daily_of('ut', 'kind', '2026-11-08', '2026-11-12'), '2026-11-10 tts e2 q3 f0 | 2026-11-11 tts e2 q12 f0',
          'ut days are the same after the merge');
select is(tests.daily_of('la', 'kind', '2026-10-31', '2026-11-02'),
          '2026-10-31 tts e1 q16 f0 | 2026-11-01 tts e4 q480 f0 | 2026-11-02 tts e1 q512 f0', 'the fall-back day is the same after the merge');
select is(tests.daily_of('la', 'kind', '2026-03-07', '2026-03-09'),
          '2026-03-07 tts e1 q1000 f0 | 2026-03-08 tts e3 q9000 f0 | 2026-03-09 tts e1 q5000 f0', 'the spring-forward day is the same after the merge');
select is(tests.period_of('la', '2026-11-01 08:00:00+00') || ' / ' || tests.period_of('la', '2026-11-01 06:30:00+00'),
          '2026-11-01..2026-12-01 tts e9 q1007 d63000 c0.01007 / 2026-10-01..2026-11-01 tts e1 q16 d7000 c0.00016',
          'la periods are the same after the merge');
select is(tests.period_of('nz', '2026-10-31 12:00:00+00') || ' / ' || tests.period_of('nz', '2026-10-31 10:45:00+00'),
          '2026-11-01..2026-12-01 tts e5 q31 d35000 c0.00031 / 2026-10-01..2026-11-01 tts e1 q32 d7000 c0.00032',
          'nz periods are the same after the merge');

select * from finish();
rollback;
