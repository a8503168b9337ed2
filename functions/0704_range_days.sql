-- Resolves a history range ('7d', '30d', '3m', '12m', any 'N[dwmy]', or custom from/to) into local days, raising PT011 when invalid.
-- Called by tally.usage_history and tally.usage_peak.
create or replace function tally._range_days(range text, from_day date, to_day date, today date,
                                             out first_day date, out last_day date)
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  m text[];
  n integer;
begin
  if from_day is not null or to_day is not null or range = 'custom' then
    if from_day is null or to_day is null or to_day < from_day then
      raise exception using errcode = 'PT011', column = 'to_day',
        message = format('a custom range needs from_day <= to_day (got %s .. %s)',
                         coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
    end if;
    first_day := from_day;
    last_day := to_day;
  else
    m := regexp_match(coalesce(range, ''), '^([1-9][0-9]{0,3})([dwmy])$');
    if m is null then
      raise exception using errcode = 'PT011', column = 'range',
        message = format('range %L is not known: use 7d, 30d, 3m, 12m (any N followed by d, w, m or y) or custom with from_day and to_day', range);
    end if;
    n := m[1]::integer;
    last_day := today;
    first_day := case m[2]
      when 'd' then today - (n - 1)
      when 'w' then date_trunc('week', today::timestamp)::date - 7 * (n - 1)
      when 'm' then (date_trunc('month', today::timestamp) - make_interval(months => n - 1))::date
      else (date_trunc('year', today::timestamp) - make_interval(years => n - 1))::date
    end;
  end if;
  if last_day - first_day > 3660 then
    raise exception using errcode = 'PT011', column = 'range',
      message = format('range %s .. %s is longer than 3660 days', first_day, last_day);
  end if;
end
$$;

comment on function tally._range_days(text, date, date, date) is
  'First and last local day of a history range: Nd = N days ending today, Nw/Nm/Ny = N calendar weeks (Monday first)/months/years ending with the current one, or custom from_day..to_day; PT011 when invalid (internal).';
