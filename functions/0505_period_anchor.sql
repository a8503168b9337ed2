-- The day of month a user's billing periods start on: the running subscription's start day, else the billing_anchor_day setting, else 1.
-- Called by every billing-period read (period_totals, check_quota, quota_forecast, summary_card); the merge and the rebuild join the same columns.
create or replace function tally._period_anchor(user_id text)
returns integer
language plpgsql
stable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select coalesce((select coalesce(s.subscription_anchor_day, s.billing_anchor_day)::integer
                     from tally.user_settings s
                    where s.user_id = _period_anchor.user_id), 1)
  );
end
$$;

comment on function tally._period_anchor(text) is
  'Effective billing anchor of a user (1-31): the day of month the running subscription started (local time), else the billing_anchor_day setting, else 1 (internal).';
