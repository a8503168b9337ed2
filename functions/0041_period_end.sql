-- First local day after the billing period that starts on period_start: the next month's anchor day (clamped to its length).
-- Called by tally.period_totals, tally.quota_forecast and tally.summary_card.
create or replace function tally._period_end(period_start date, anchor_day integer)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select (date_trunc('month', period_start) + interval '1 month')::date
         + (least(anchor_day, extract(day from date_trunc('month', period_start) + interval '2 months - 1 day'))::integer - 1)
$$;

comment on function tally._period_end(date, integer) is
  'End (exclusive) of the billing period starting on period_start when periods begin on day anchor_day (1-31) of each month, clamped to the length of the next month.';
