-- Top error codes of failed events per timeframe, kind and format, from the RETAINED RAW LOG (documented exception).
-- Refreshed by tally.refresh_analytics; read by tally.admin_error_codes.
--
-- Pending deltas do not carry error_code, so no rollup knows it; this view reads
-- failed rows of tally.usage_events and so covers only the retained partitions.
create materialized view tally.admin_error_codes_mv as
with windows as (
  select w.time_window, w.since_at from tally._analytics_windows() w
), counted as (
  select w.time_window, e.kind,
         case when grouping(coalesce(left(e.attributes ->> 'format', 64), '')) = 1 then '*'
              else coalesce(left(e.attributes ->> 'format', 64), '') end as format,
         coalesce(e.error_code, '') as error_code,
         count(*) as failures, count(distinct e.user_id) as users, max(e.occurred_at) as last_at
    from tally.usage_events e
    join windows w on w.since_at is null or e.occurred_at >= w.since_at
   where e.status = 'failed'
   group by grouping sets ((w.time_window, e.kind, coalesce(left(e.attributes ->> 'format', 64), ''), coalesce(e.error_code, '')),
                           (w.time_window, e.kind, coalesce(e.error_code, '')))
), ranked as (
  select c.*, rank() over (partition by c.time_window, c.kind, c.format order by c.failures desc) as r
    from counted c
)
select r.time_window, r.kind, r.format, r.error_code, r.failures, r.users, r.last_at
  from ranked r
 where r.r <= 100;

comment on materialized view tally.admin_error_codes_mv is
  'Failed events per timeframe (24h, 7d, 30d exact; all = the retained raw log), kind, format (''*'' = all formats) and error_code ('''' = none): failures, distinct users, last failure; top 100 codes each. The one admin view over the raw log (error_code is not in the pending deltas), so history dropped by retention is not in it. Read through tally.admin_error_codes.';

create unique index admin_error_codes_mv_key on tally.admin_error_codes_mv (time_window, kind, format, error_code);
