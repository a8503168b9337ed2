-- Top error codes of failed events in a timeframe, by kind (and format), from the retained raw log.
-- Called by dashboards, admin.error_codes() and `pgtally admin`.
create or replace function tally.admin_error_codes(time_window text default '7d', max_rows integer default 10,
                                                   by_format boolean default false)
returns table (kind text, format text, error_code text, failures bigint, users bigint, last_at timestamptz,
               refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  min_users integer := tally._analytics_min_group_size();
begin
  perform tally._check_window(time_window);
  if max_rows is null or max_rows not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'max_rows',
      message = format('max_rows must be between 1 and 1000 (got %s)', coalesce(max_rows::text, 'null'));
  end if;
  return query
  select e.kind, e.format, e.error_code, e.failures, e.users, e.last_at, tally._refreshed_at('admin_error_codes_mv')
    from tally.admin_error_codes_mv e
   where e.time_window = admin_error_codes.time_window
     -- Error codes that fewer users than the minimum group size met are left out.
     and (e.users >= min_users or min_users <= 1)
     and (case when by_format then e.format <> '*' else e.format = '*' end)
   order by e.failures desc, e.kind, e.format, e.error_code
   limit max_rows;
end
$$;

comment on function tally.admin_error_codes(text, integer, boolean) is
  'Most frequent error codes of failed events in a timeframe (24h, 7d, 30d exact; all = the retained raw log) per kind, or per kind and format when by_format: failures, distinct users, last failure; codes met by fewer users than the minimum group size are left out. The only admin answer read from the raw log (error_code is not in the rollups), so dropped partitions are not in it. As of refreshed_at. Requires tally_analyst.';
