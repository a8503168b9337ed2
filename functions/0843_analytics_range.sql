-- Resolves the timeframe of an admin read: a named window (24h, 7d, 30d, all; default_window when none is given) or the UTC days [from_day, to_day).
-- Called by the admin read functions that take a time_window or a range of days; raises PT011 naming the argument.
create or replace function tally._analytics_range(time_window text, from_day date, to_day date, default_window text)
returns table (window_name text, range_start timestamptz, range_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if from_day is null and to_day is null then
    -- A named window: read from the materialized view of that window.
    return query select tally._check_window(coalesce(_analytics_range.time_window, default_window)),
                        null::timestamptz, null::timestamptz;
    return;
  elsif _analytics_range.time_window is not null then
    raise exception using errcode = 'PT011', column = 'time_window',
      message = format('give either time_window (got %L) or from_day and to_day, not both', _analytics_range.time_window);
  elsif from_day is null or to_day is null then
    raise exception using errcode = 'PT011', column = case when from_day is null then 'from_day' else 'to_day' end,
      message = format('from_day and to_day go together: the range is the UTC days [from_day, to_day) (got %s to %s)',
                       coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  elsif to_day <= from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('to_day (%s) must be after from_day (%s): the range is the UTC days [from_day, to_day)',
                       to_day, from_day);
  elsif from_day = '-infinity' or to_day = 'infinity' then
    raise exception using errcode = 'PT011', column = case when from_day = '-infinity' then 'from_day' else 'to_day' end,
      message = 'from_day and to_day must be dates (use time_window => ''all'' for all time)';
  end if;
  -- A range of whole UTC days: computed at call time from the per-user day tables.
  return query select null::text, from_day::timestamp at time zone 'UTC', to_day::timestamp at time zone 'UTC';
end
$$;

comment on function tally._analytics_range(text, date, date, text) is
  'The timeframe of an admin read: (window_name, NULL, NULL) for a named window (time_window, else default_window), or (NULL, range_start, range_end) for the UTC days [from_day, to_day); raises PT011 naming the argument for an unknown window, a window and days together, one day without the other, or to_day not after from_day (internal).';
