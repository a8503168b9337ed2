-- Schedules tally.refresh_analytics() with pg_cron (job 'pgtally-refresh', replaced when it exists) every `every`.
-- Called once by a DBA; without pg_cron it raises 55000 with the crontab line for `pgtally refresh` in the hint.
create or replace function tally.schedule_refresh(every interval default interval '5 minutes')
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  spec text := tally._interval_to_cron(every);
  job  bigint;
begin
  if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise exception using errcode = '55000',
      message = 'pg_cron is not installed in this database, so tally.schedule_refresh cannot schedule the refresh',
      hint = format('Run the CLI from cron instead, e.g. this crontab line: %s DATABASE_URL=postgresql://... pgtally refresh  '
                    '(or CREATE EXTENSION pg_cron, with pg_cron in shared_preload_libraries and cron.database_name set to this database).',
                    spec);
  end if;
  -- cron.schedule with a job name replaces an existing job of that name (pg_cron >= 1.3).
  execute 'select cron.schedule($1, $2, $3)' into job
    using 'pgtally-refresh', spec, 'select tally.refresh_analytics()';
  return format('scheduled pg_cron job %s ''pgtally-refresh'': %s select tally.refresh_analytics()', job, spec);
end
$$;

comment on function tally.schedule_refresh(interval) is
  'Schedules tally.refresh_analytics() every `every` with pg_cron (job ''pgtally-refresh'', cron syntax, so whole minutes dividing an hour or hours dividing a day) and returns a description. Without pg_cron raises SQLSTATE 55000 whose hint is the crontab line for `pgtally refresh`. Schedule tally.merge_pending() too: the views read merged rollups.';
