-- First local day of the billing period that contains local day d, for periods anchored on anchor_day.
-- Called by the merge and by the billing-period reads.
create or replace function tally._period_start(d date, anchor_day integer)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case
    when extract(day from d) >= anchor_day
      then (date_trunc('month', d)::date + (anchor_day - 1))
    else ((date_trunc('month', d) - interval '1 month')::date + (anchor_day - 1))
  end
$$;

comment on function tally._period_start(date, integer) is
  'Start of the billing period containing local day d when periods begin on day anchor_day (1-28) of each month.';
