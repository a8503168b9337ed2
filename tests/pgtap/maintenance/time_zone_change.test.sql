-- A time zone change (a one-user rebuild) moves the user's hour-of-week histogram to the new zone, for merged
-- and pending usage alike, and verify stays clean.
begin;
select plan(6);

-- Monday 2026-11-09 23:30 UTC: hour 23 of the week in UTC, Tuesday 08:30 (hour 32) in Tokyo.
select tally.record_usage('h1', 'u3', 'tts', 10, '2026-11-09 23:30+00', duration_ms => 500);
select tally.merge_pending();
select is((select string_agg(format('%s:%s', how, events), ' ' order by how) from tally.user_hours where user_id = 'u3'),
          '23:1', 'merged in UTC: Monday, hour 23');

select tally.set_user_settings('u3', 'Asia/Tokyo');
select is((select string_agg(format('%s:%s', how, events), ' ' order by how) from tally.user_hours where user_id = 'u3'),
          '32:1', 'after the change to Tokyo: Tuesday 08:00-08:59');
select is((select sum(drifted)::int from tally.verify()), 0, 'verify is clean');

-- A pending delta at the change: Tuesday 00:30 UTC (hour 24 in UTC).
select tally.record_usage('h2', 'u3', 'tts', 20, '2026-11-10 00:30+00', duration_ms => 700);
select tally.set_user_settings('u3', 'UTC');
select is((select sum(drifted)::int from tally.verify()), 0, 'verify is clean with the delta still pending');
select tally.merge_pending();
select is((select string_agg(format('%s:%s', how, events), ' ' order by how) from tally.user_hours where user_id = 'u3'),
          '23:1 24:1', 'back in UTC, the merged and the pending event each counted once');
select is((select sum(drifted)::int from tally.verify()), 0, 'verify is clean after the merge');

select * from finish();
rollback;
