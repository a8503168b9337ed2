-- Validates an analytics timeframe name (24h, 7d, 30d, all) and returns it; raises PT011 naming the argument otherwise.
-- Called by the admin read functions that take a time_window.
create or replace function tally._check_window(time_window text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if time_window is null or time_window not in ('24h', '7d', '30d', 'all') then
    raise exception using errcode = 'PT011', column = 'time_window',
      message = format('time_window must be one of 24h, 7d, 30d, all (got %L)', time_window);
  end if;
  return time_window;
end
$$;

comment on function tally._check_window(text) is
  'Returns time_window when it is 24h, 7d, 30d or all; raises PT011 otherwise (internal).';
