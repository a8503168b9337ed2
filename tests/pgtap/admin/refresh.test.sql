-- tally.refresh_analytics refreshes every view (each has the unique index CONCURRENTLY needs), logs each one,
-- and the answers report how fresh they are; the views hold merged and pending usage alike; the pg_cron schedule takes cron
-- syntax (or says which crontab line to use); only tally_analyst reads the analytics (a reader gets 42501).
begin;
select plan(36);

-- One user: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

create function tests.state_and_hint(statement text)
returns text language plpgsql as $$
declare
  state text;
  hint  text;
begin
  execute statement;
  return 'no error';
exception when others then
  get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint;
  return state || ': ' || hint;
end
$$;

select is((select count(*)::int from pg_class c where c.relnamespace = 'tally'::regnamespace and c.relkind = 'm'), 9,
          'eight admin materialized views and the peer distribution (the daily totals are a table kept by the refresh)');
select is((select count(*)::int from pg_class c
            where c.relnamespace = 'tally'::regnamespace and c.relkind = 'm'
              and not exists (select from pg_index i where i.indrelid = c.oid and i.indisunique)), 0,
          'each has a unique index (REFRESH ... CONCURRENTLY needs one)');
select is((select count(*)::int from tally.analytics_freshness() f where f.refreshed_at is null), 10,
          'before the first refresh every view says it was never refreshed');

select ok(tests.tts('e1', 'u1', '2026-11-01 10:00+00', 100), 'one event recorded, not merged');
select is((select string_agg(r.view_name || ':' || r.status || ':' || (r.row_count >= 0), ' ') from tally.refresh_analytics() r),
          'admin_totals_mv:refreshed:true admin_overview_mv:refreshed:true admin_activity_mv:refreshed:true '
          'admin_leaderboards_mv:refreshed:true admin_reliability_mv:refreshed:true admin_error_codes_mv:refreshed:true '
          'admin_cohorts_mv:refreshed:true admin_funnel_mv:refreshed:true peer_distribution_mv:refreshed:true '
          'admin_daily:refreshed:true',
          'refresh_analytics refreshes every view in order and reports its rows');
select is((select format('%s %s', o.users, o.events) from tally.admin_overview() o), '1 1',
          'the views hold the pending (not yet merged) event: exact as of the refresh');
select is(tally.merge_pending(), 1, 'merge');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed' and r.duration_ms >= 0), 10,
          'a second refresh');
select is((select format('%s %s', o.users, o.events) from tally.admin_overview() o), '1 1',
          'merged, the same answer: merged and pending usage count once each');

select is((select count(*)::int from tally.refresh_log), 20, 'two runs of ten views are logged');
select ok((select bool_and(l.finished_at >= l.started_at and l.duration_ms >= 0 and l.run_started <= l.started_at)
             from tally.refresh_log l), 'each log row has start, end and duration');
select is((select count(*)::int from tally.analytics_freshness() f
            where f.refreshed_at = (select max(l.started_at) from tally.refresh_log l where l.view_name = f.view_name)
              and f.age >= interval '0'), 10,
          'analytics_freshness reports the latest refresh of every view and its age');
select ok((select o.refreshed_at = (select max(l.started_at) from tally.refresh_log l where l.view_name = 'admin_overview_mv')
             from tally.admin_overview() o)
      and (select bool_and(t.refreshed_at is not null) from tally.admin_totals('kind') t)
      and (select bool_and(c.refreshed_at is not null) from tally.admin_cohorts('2026-01-01') c),
          'every answer carries refreshed_at');

-- Scheduling.
select is(tally._interval_to_cron('1 minute') || ' | ' || tally._interval_to_cron('5 minutes') || ' | ' ||
          tally._interval_to_cron('1 hour') || ' | ' || tally._interval_to_cron('6 hours') || ' | ' ||
          tally._interval_to_cron('1 day'),
          '* * * * * | */5 * * * * | 0 * * * * | 0 */6 * * * | 0 0 * * *', 'intervals become cron syntax (pg_cron 1.4)');
select throws_ok($$select tally._interval_to_cron('30 seconds')$$, 'PT011', null, 'cron has no seconds');
select throws_ok($$select tally._interval_to_cron('7 minutes')$$, 'PT011', null, 'an interval that does not divide an hour is refused');
select throws_ok($$select tally._interval_to_cron('90 minutes')$$, 'PT011', null, 'nor one that does not divide a day');
select is(tests.state_and_hint($$select tally.schedule_refresh('5 minutes')$$),
          '55000: Run the CLI from cron instead, e.g. this crontab line: */5 * * * * DATABASE_URL=postgresql://... pgtally refresh  '
          '(or CREATE EXTENSION pg_cron, with pg_cron in shared_preload_libraries and cron.database_name set to this database).',
          'without pg_cron schedule_refresh says which crontab line to use');

-- Privileges.
create role t_admin_reader login in role tally_reader;
create role t_admin_analyst login in role tally_analyst;
set local role t_admin_reader;
select throws_ok($$select * from tally.admin_overview()$$, '42501', null, 'a reader cannot call the admin functions');
select throws_ok($$select * from tally.admin_totals_mv$$, '42501', null, 'nor read the views');
select throws_ok($$select * from tally.admin_totals('kind')$$, '42501', null, 'reader: admin_totals is denied');
select throws_ok($$select * from tally.admin_leaderboard('voice')$$, '42501', null, 'reader: admin_leaderboard is denied');
select throws_ok($$select * from tally.admin_trend()$$, '42501', null, 'reader: admin_trend is denied');
select throws_ok($$select * from tally.admin_active_users()$$, '42501', null, 'reader: admin_active_users is denied');
select throws_ok($$select * from tally.admin_week_over_week()$$, '42501', null, 'reader: admin_week_over_week is denied');
select throws_ok($$select * from tally.admin_funnel('{tts}')$$, '42501', null, 'reader: admin_funnel is denied');
select throws_ok($$select * from tally.admin_reliability()$$, '42501', null, 'reader: admin_reliability is denied');
select throws_ok($$select * from tally.admin_error_codes()$$, '42501', null, 'reader: admin_error_codes is denied');
select throws_ok($$select * from tally.admin_cohorts()$$, '42501', null, 'reader: admin_cohorts is denied');
select throws_ok($$select * from tally.analytics_freshness()$$, '42501', null, 'reader: analytics_freshness is denied');
select throws_ok($$select * from tally.refresh_analytics()$$, '42501', null, 'reader: refresh_analytics is denied');
reset role;
set local role t_admin_analyst;
select lives_ok($$select * from tally.admin_overview(); select * from tally.admin_totals('kind');
                  select * from tally.admin_leaderboard('voice'); select * from tally.admin_trend();
                  select * from tally.admin_active_users(); select * from tally.admin_week_over_week();
                  select * from tally.admin_funnel('{paywall.viewed,paywall.clicked}');
                  select * from tally.admin_reliability(); select * from tally.admin_error_codes();
                  select * from tally.admin_cohorts(); select * from tally.analytics_freshness()$$,
                'an analyst calls every admin function');
select throws_ok($$select * from tally.admin_totals_mv$$, '42501', null,
                 'but reads no view directly: the views hold every group, the functions hide the small ones');
select throws_ok($$select * from tally.user_kind_days$$, '42501', null,
                 'but not the per-user sources (the funnel reads them as definer)');
select is((select count(*)::int from tally.refresh_analytics()), 10, 'an analyst may refresh (runs as the views'' owner)');
reset role;
select * from finish();
rollback;
