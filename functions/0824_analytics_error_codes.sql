-- Failed events per plan, kind, format and error code over a window [from_at, to_at), from the retained raw log.
-- Called by tally.admin_error_codes_mv (the named windows, at refresh) and by tally.admin_error_codes (a range of days).
create or replace function tally._analytics_error_codes(from_at timestamptz, to_at timestamptz, only_plan text default null)
returns table (plan text, kind text, format text, error_code text, failures bigint, users bigint, last_at timestamptz,
               window_start timestamptz, window_end timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Pending deltas and the rollups do not carry error_code: only the retained log does,
  -- so the window read starts no earlier than the retained log.
  since timestamptz := greatest(from_at,
                                coalesce((select max(r.range_end)::timestamp at time zone 'UTC' from tally.retention_runs r),
                                         '-infinity'::timestamptz));
begin
  return query
  with failed as (
    select e.user_id, coalesce(e.plan, '') as plan, e.kind, coalesce(left(e.attributes ->> 'format', 64), '') as format,
           coalesce(e.error_code, '') as error_code, e.occurred_at
      from tally.usage_events e
     where e.status = 'failed' and e.occurred_at >= since and e.occurred_at < to_at
       and (only_plan is null or coalesce(e.plan, '') = only_plan)
  )
  select case when grouping(f.plan) = 1 then '*' else f.plan end, f.kind,
         case when grouping(f.format) = 1 then '*' else f.format end, f.error_code,
         count(*), count(distinct f.user_id), max(f.occurred_at), since, to_at
    from failed f
   group by grouping sets ((f.plan, f.kind, f.format, f.error_code), (f.plan, f.kind, f.error_code),
                           (f.kind, f.format, f.error_code), (f.kind, f.error_code));
end
$$;

comment on function tally._analytics_error_codes(timestamptz, timestamptz, text) is
  'Failed events over [from_at, to_at) of the retained raw log per plan in force (''*'' = all plans, '''' = none), kind, format (''*'' = all formats) and error_code ('''' = none): failures, distinct users, last failure; window_start = from_at or the start of the retained log when later. Internal: no minimum group size applied.';
