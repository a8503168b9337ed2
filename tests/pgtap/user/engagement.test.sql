-- Engagement profile: active days and streaks in the user's local days (gaps and islands, late events
-- joining streaks, failures and reversals), sessions (session_id groups and session-kind events), before and after merges.
begin;
select plan(22);
set local timezone = 'UTC';

-- An event with explicit kind, amount, duration, attributes and status.
create function tests.ev(id text, u text, k text, at timestamptz, q bigint default 10, dur bigint default null,
                         attrs jsonb default '{}', st text default 'succeeded')
returns boolean language sql as $$
  select tally.record_usage(event_id => id, user_id => u, kind => k, quantity => q, occurred_at => at,
                            duration_ms => dur, status => st, attributes => attrs)
$$;

-- The profile as one line: days, streaks, sessions.
create function tests.profile_of(u text, at timestamptz)
returns text language sql as $$
  select format('days=%s current=%s from %s longest=%s %s..%s sessions=%s total=%s avg=%s max=%s',
                p.days_active, p.current_streak, coalesce(p.current_streak_from::text, '-'), p.longest_streak,
                coalesce(p.longest_streak_from::text, '-'), coalesce(p.longest_streak_to::text, '-'), p.sessions,
                coalesce(p.total_session_ms::text, '-'), coalesce(p.avg_session_ms::text, '-'),
                coalesce(p.longest_session_ms::text, '-'))
    from tally.engagement_profile(u, at) p
$$;

select is(tests.profile_of('nobody', '2026-11-21 12:00+00'),
          'days=0 current=0 from - longest=0 -..- sessions=0 total=- avg=- max=-', 'empty user: zeros, no streaks, no sessions');
select is((select first_active_at is null and last_active_at is null and time_zone = 'UTC'
             from tally.engagement_profile('nobody')), true, 'empty user: no first or last activity, UTC');

-- One event.
select ok(tests.ev('one', 'single', 'tts', '2026-11-21 08:00+00'), 'single: one event today');
select is(tests.profile_of('single', '2026-11-21 12:00+00'),
          'days=1 current=1 from 2026-11-21 longest=1 2026-11-21..2026-11-21 sessions=0 total=- avg=- max=-',
          'single: one active day is a one-day streak');

-- Days with gaps: Nov 1-3, Nov 5-6, Nov 20-21; a failed event on Nov 10 and a reversed one on Nov 15 do not count.
select ok(tests.ev('g1', 'u', 'tts', '2026-11-01 10:00+00') and tests.ev('g2', 'u', 'tts', '2026-11-02 23:59+00')
      and tests.ev('g3', 'u', 'ocr', '2026-11-03 00:00+00') and tests.ev('g5', 'u', 'tts', '2026-11-05 12:00+00')
      and tests.ev('g6', 'u', 'tts', '2026-11-06 12:00+00') and tests.ev('g20', 'u', 'tts', '2026-11-20 12:00+00')
      and tests.ev('g21', 'u', 'tts', '2026-11-21 07:00+00') and tests.ev('g21b', 'u', 'ocr', '2026-11-21 08:00+00')
      and tests.ev('f10', 'u', 'tts', '2026-11-10 12:00+00', st => 'failed')
      and tests.ev('r15', 'u', 'tts', '2026-11-15 12:00+00') and tally.reverse_usage('u', 'r15', 'r15-rev'),
   'u: events with gaps, a failure and a reversal');
select is(tests.profile_of('u', '2026-11-21 12:00+00'),
          'days=7 current=2 from 2026-11-20 longest=3 2026-11-01..2026-11-03 sessions=0 total=- avg=- max=-',
          'u: seven active days, current streak 2, longest 3 (pending)');
select is(tests.profile_of('u', '2026-11-22 23:00+00'),
          'days=7 current=2 from 2026-11-20 longest=3 2026-11-01..2026-11-03 sessions=0 total=- avg=- max=-',
          'u: the next day the streak still stands until the day is over');
select is(tests.profile_of('u', '2026-11-23 00:00+00'),
          'days=7 current=0 from - longest=3 2026-11-01..2026-11-03 sessions=0 total=- avg=- max=-',
          'u: after a whole day without activity the current streak is 0');
select is(tests.profile_of('u', '2026-11-05 18:00+00'),
          'days=7 current=1 from 2026-11-05 longest=3 2026-11-01..2026-11-03 sessions=0 total=- avg=- max=-',
          'u: as of Nov 5 the current streak ends today (later days are ignored for it)');
select is(tally.merge_pending(), 12, 'merge folds the twelve deltas (single and u)');
select is(tests.profile_of('u', '2026-11-21 12:00+00'),
          'days=7 current=2 from 2026-11-20 longest=3 2026-11-01..2026-11-03 sessions=0 total=- avg=- max=-',
          'u: the same after the merge');

-- A late event on Nov 4 (pending, while the rest is merged) joins two streaks into one of six days.
select ok(tests.ev('g4', 'u', 'tts', '2026-11-04 12:00+00'), 'u: a late event fills the Nov 4 gap');
select is(tests.profile_of('u', '2026-11-21 12:00+00'),
          'days=8 current=2 from 2026-11-20 longest=6 2026-11-01..2026-11-06 sessions=0 total=- avg=- max=-',
          'u: Nov 1-6 is now one six-day streak (merged + pending)');
select is((select format('%s %s', first_active_at, last_active_at) from tally.engagement_profile('u')),
          '2026-11-01 10:00:00+00 2026-11-21 08:00:00+00', 'u: first and last active moments');

-- Local days: Los Angeles (UTC-8 in November). The same instants are one UTC day but two local days;
-- the 25-hour fall-back day (Nov 1) holds both 01:30s and 23:30 PST.
select lives_ok($$select tally.set_user_settings('la', 'America/Los_Angeles')$$, 'la lives in Los Angeles');
select ok(tests.ev('la1', 'la', 'tts', '2026-11-10 06:00+00') and tests.ev('la2', 'la', 'tts', '2026-11-10 20:00+00')
      and tests.ev('ut1', 'ut', 'tts', '2026-11-10 06:00+00') and tests.ev('ut2', 'ut', 'tts', '2026-11-10 20:00+00')
      and tests.ev('fb1', 'la', 'tts', '2026-11-01 01:30-07') and tests.ev('fb2', 'la', 'tts', '2026-11-01 01:30-08')
      and tests.ev('fb3', 'la', 'tts', '2026-11-01 23:30-08'),
   'la and ut: the same instants; la also around the fall-back day');
select is(tests.profile_of('la', '2026-11-11 06:00+00') || ' / ' || tests.profile_of('ut', '2026-11-11 06:00+00'),
          'days=3 current=2 from 2026-11-09 longest=2 2026-11-09..2026-11-10 sessions=0 total=- avg=- max=- / days=1 current=1 from 2026-11-10 longest=1 2026-11-10..2026-11-10 sessions=0 total=- avg=- max=-',
          'la: Nov 9 and Nov 10 local plus the fall-back day; ut: one UTC day (pending)');

-- Sessions: A = two tts blocks sharing a session_id (10:00:00 + 2 s, 10:00:10 + 3 s: 13 s);
-- a session-kind event without session_id (10 min); B = a session-kind event of 60 s plus a tts block in it.
select ok(tests.ev('sa1', 's', 'tts', '2026-11-20 10:00:00+00', 100, 2000, '{"session_id": "A"}')
      and tests.ev('sa2', 's', 'tts', '2026-11-20 10:00:10+00', 100, 3000, '{"session_id": "A"}')
      and tests.ev('sx', 's', 'session', '2026-11-20 12:00:00+00', 0, 600000)
      and tests.ev('sb1', 's', 'session', '2026-11-21 09:00:00+00', 0, 60000, '{"session_id": "B"}')
      and tests.ev('sb2', 's', 'tts', '2026-11-21 09:00:30+00', 100, 90000, '{"session_id": "B"}'),
   's: three sessions');
select is(tests.profile_of('s', '2026-11-21 12:00+00'),
          'days=2 current=2 from 2026-11-20 longest=2 2026-11-20..2026-11-21 sessions=3 total=673000 avg=224333 max=600000',
          's: 13 s, 10 min and 60 s sessions (pending)');
select is(tally.merge_pending(), 13, 'merge folds the thirteen deltas (the late Nov 4 event too)');
-- A late block of session A (pending, A merged) extends it to 10:00:31; the 10-minute session is reversed.
select ok(tests.ev('sa3', 's', 'tts', '2026-11-20 10:00:30+00', 100, 1000, '{"session_id": "A"}')
      and tally.reverse_usage('s', 'sx', 'sx-rev'), 's: a late block of A, and the 10-minute session reversed');
select is(tests.profile_of('s', '2026-11-21 12:00+00'),
          'days=2 current=2 from 2026-11-20 longest=2 2026-11-20..2026-11-21 sessions=2 total=91000 avg=45500 max=60000',
          's: A now lasts 31 s, the reversed session is gone (merged + pending)');

select * from finish();
rollback;
