-- Converts a refresh interval into pg_cron 1.4 cron syntax ('5 minutes' -> '*/5 * * * *'); raises PT011 when cron cannot express it evenly.
-- Called by tally.schedule_refresh.
create or replace function tally._interval_to_cron(every interval)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  secs    numeric := extract(epoch from every);
  minutes integer;
begin
  if secs is null or secs < 60 or secs % 60 <> 0
     or (secs < 3600 and 3600 % secs <> 0)
     or (secs >= 3600 and (secs % 3600 <> 0 or (secs < 86400 and 86400 % secs <> 0) or secs > 86400)) then
    raise exception using errcode = 'PT011', column = 'every',
      message = format('every must be a whole number of minutes dividing an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 min) '
                       'or of hours dividing a day (1, 2, 3, 4, 6, 8, 12, 24 h) to map onto cron syntax (got %s)',
                       coalesce(every::text, 'null'));
  end if;
  minutes := (secs / 60)::integer;
  return case
    when minutes = 1 then '* * * * *'
    when minutes < 60 then format('*/%s * * * *', minutes)
    when minutes = 60 then '0 * * * *'
    when minutes = 1440 then '0 0 * * *'
    else format('0 */%s * * *', minutes / 60)
  end;
end
$$;

comment on function tally._interval_to_cron(interval) is
  'Cron syntax (pg_cron 1.4 takes no seconds) for a refresh interval that divides an hour or a day evenly; raises PT011 otherwise (internal).';
