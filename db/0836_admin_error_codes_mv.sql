-- Top error codes of failed events per timeframe, plan, kind and format, from the RETAINED RAW LOG (documented exception).
-- Refreshed by tally.refresh_analytics; read by tally.admin_error_codes.
--
-- Pending deltas do not carry error_code, so no rollup knows it; this view reads
-- failed rows of tally.usage_events and so covers only the retained partitions.
create materialized view tally.admin_error_codes_mv as
with counted as (
  select w.time_window, e.*
    from tally._analytics_windows(statement_timestamp()) w
   cross join lateral tally._analytics_error_codes(w.from_at, w.to_at) e
), ranked as (
  select c.*, rank() over (partition by c.time_window, c.plan, c.kind, c.format order by c.failures desc) as r
    from counted c
)
select r.time_window, r.plan, r.kind, r.format, r.error_code, r.failures, r.users, r.last_at, r.window_start, r.window_end
  from ranked r
 where r.r <= 100;

comment on materialized view tally.admin_error_codes_mv is
  'Failed events per timeframe (24h, 7d, 30d ending at the refresh; all = the retained raw log), plan in force (''*'' = all plans), kind, format (''*'' = all formats) and error_code ('''' = none): failures, distinct users, last failure, window_start/window_end; top 100 codes each. The one admin view over the raw log (error_code is not in the pending deltas), so history dropped by retention is not in it. Read through tally.admin_error_codes.';

create unique index admin_error_codes_mv_key on tally.admin_error_codes_mv (time_window, plan, kind, format, error_code);
