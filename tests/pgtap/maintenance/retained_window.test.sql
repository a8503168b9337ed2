-- After retention, rebuild and verify cover only what the retained log wholly covers: per-day tables from the
-- first whole day on, lifetime tables (hours, sessions) only for users whose whole history is retained.
begin;
select plan(14);

select tally.ensure_partitions('2025-06-01', '2025-06-01');
select tally.set_user_settings('u1', 'Pacific/Auckland');
-- u1: one session spanning the retention boundary (June 2025 and November 2026); u2: only recent usage.
select tally.record_usage('o1', 'u1', 'tts', 100, '2025-06-10 10:00+00', duration_ms => 1000,
                          attributes => '{"session_id": "s1", "format": "mp3"}');
select tally.record_usage('n1', 'u1', 'tts', 200, '2026-11-10 10:00+00', duration_ms => 2000,
                          attributes => '{"session_id": "s1", "format": "mp3"}');
select tally.record_usage('x1', 'u2', 'tts', 300, '2026-11-11 09:00+00', duration_ms => 3000,
                          attributes => '{"session_id": "s2", "format": "mp3"}');
select tally.merge_pending();
select is((select count(*)::int from tally.apply_retention('31 days')), 1, 'retention drops the June 2025 partition');
select is((select sum(drifted)::int from tally.verify()), 0, 'verify is clean after retention');
select is((select checked::int from tally.verify() where check_name = 'user_hours vs log'), 1,
          'the hour histogram is checked for u2 only: part of u1''s history is gone from the log');

select tally.rebuild();
select is((select sum(events)::int from tally.user_hours where user_id = 'u1'), 2,
          'a rebuild keeps u1''s hour histogram, which still counts the dropped June event');
select is((select events::int from tally.user_sessions where user_id = 'u1' and session_id = 's1'), 2,
          'and the session spanning the boundary keeps both events');
select is((select string_agg(day::text, ' ' order by day) from tally.user_daily_ops where user_id = 'u1'),
          '2025-06-10 2026-11-10', 'per-day rows older than the retained log stay');
select is((select string_agg(day::text, ' ' order by day) from tally.user_kind_days where user_id = 'u1'),
          '2025-06-10 2026-11-10', 'funnel days too');
select is((select sum(drifted)::int from tally.verify()), 0, 'and verify stays clean');

-- A user whose whole history is retained is rebuilt and checked in full.
update tally.user_hours set events = events + 5 where user_id = 'u2';
update tally.user_sessions set first_at = first_at - interval '1 day' where user_id = 'u2';
select results_eq($$select check_name, sample from tally.verify() where drifted > 0 order by check_name$$,
  $$values ('user_hours vs log'::text, array['u2/' || ((extract(isodow from timestamp '2026-11-11 09:00') - 1) * 24 + 9)]),
           ('user_sessions vs log', array['u2/s2'])$$,
  'hand edits of u2''s lifetime tables are found');
select tally.rebuild('u2');
select is((select sum(drifted)::int from tally.verify()), 0, 'and rebuilding u2 repairs them');

-- Per-day tables: a day inside the log is checked and rebuilt, a day older than the log is not.
update tally.user_daily_ops set succeeded = succeeded + 1 where user_id = 'u1';
select is((select sample from tally.verify() where check_name = 'user_daily_ops vs log'),
          array['u1/2026-11-10//tts/mp3'], 'only the edit of the day inside the retained log is reported');
select tally.rebuild('u1');
select is((select string_agg(format('%s %s', day, succeeded), ', ' order by day) from tally.user_daily_ops where user_id = 'u1'),
          '2025-06-10 2, 2026-11-10 1', 'the rebuild repairs the day inside the log and keeps the older day as it is');
select is((select sum(drifted)::int from tally.verify()), 0, 'verify is clean');
select is((select count(*)::int from tally.usage_events), 2, 'rebuild never touches the log');

select * from finish();
rollback;
