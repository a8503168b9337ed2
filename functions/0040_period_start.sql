-- First local day of the billing period that contains local day d, for periods anchored on anchor_day.
-- Called by the merge, the rebuild and the billing-period reads.
create or replace function tally._period_start(d date, anchor_day integer)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- A period starts on day anchor_day of a month, or on the month's last day when
  -- the month is shorter (anchor 31: Jan 31, Feb 28, Mar 31, Apr 30, ...).
  select case
    when extract(day from d) >= least(anchor_day, extract(day from date_trunc('month', d) + interval '1 month - 1 day'))
      then date_trunc('month', d)::date
           + (least(anchor_day, extract(day from date_trunc('month', d) + interval '1 month - 1 day'))::integer - 1)
    else (date_trunc('month', d) - interval '1 month')::date
         + (least(anchor_day, extract(day from date_trunc('month', d) - interval '1 day'))::integer - 1)
  end
$$;

comment on function tally._period_start(date, integer) is
  'Start of the billing period containing local day d when periods begin on day anchor_day (1-31) of each month, or on the last day of months shorter than anchor_day.';
