-- Top error codes of failed events in a timeframe (24h, 7d, 30d, all, or UTC days), by kind (and format), optionally of one plan,
-- from the retained raw log. Called by dashboards, admin.error_codes() and `pgtally admin`.
create or replace function tally.admin_error_codes(time_window text default null, max_rows integer default 10,
                                                   by_format boolean default false, from_day date default null,
                                                   to_day date default null, plan text default null)
returns table (kind text, format text, error_code text, failures bigint, users bigint, last_at timestamptz,
               window_start timestamptz, window_end timestamptz, refreshed_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r         record;
  p         text := tally._analytics_plan(plan);
  min_users integer := tally._analytics_min_group_size();
begin
  select * into r from tally._analytics_range(time_window, from_day, to_day, '7d');
  if max_rows is null or max_rows not between 1 and 1000 then
    raise exception using errcode = 'PT011', column = 'max_rows',
      message = format('max_rows must be between 1 and 1000 (got %s)', coalesce(max_rows::text, 'null'));
  end if;
  return query
  with x as (
    -- A named window from its view (as of the refresh), a range of days at call time.
    select m.kind, m.format, m.error_code, m.failures, m.users, m.last_at, m.window_start, m.window_end,
           tally._refreshed_at('admin_error_codes_mv') as refreshed_at
      from tally.admin_error_codes_mv m
     where r.window_name is not null and m.time_window = r.window_name and m.plan = coalesce(p, '*')
    union all
    select l.kind, l.format, l.error_code, l.failures, l.users, l.last_at, l.window_start, l.window_end,
           statement_timestamp()
      from tally._analytics_error_codes(r.range_start, r.range_end, p) l
     where r.window_name is null and l.plan = coalesce(p, '*')
  )
  select x.kind, x.format, x.error_code, x.failures, x.users, x.last_at, nullif(x.window_start, '-infinity'),
         x.window_end, x.refreshed_at
    from x
   -- Error codes that fewer users than the minimum group size met are left out.
   where (x.users >= min_users or min_users <= 1)
     and (case when by_format then x.format <> '*' else x.format = '*' end)
   order by x.failures desc, x.kind, x.format, x.error_code
   limit max_rows;
end
$$;

comment on function tally.admin_error_codes(text, integer, boolean, date, date, text) is
  'Most frequent error codes of failed events per kind, or per kind and format when by_format, in a timeframe: a named window (24h, 7d, 30d: the 24 hours, 7 and 30 days ending at the refresh; all = the retained raw log; default 7d) as of refreshed_at, or the UTC days [from_day, to_day) at call time; window_start/window_end say which (window_start is never before the retained log). Failures, distinct users, last failure. With plan: only events recorded under that plan. Codes met by fewer users than the minimum group size are left out. The only admin answer read from the raw log (error_code is not in the rollups), so dropped partitions are not in it. Requires tally_analyst.';
