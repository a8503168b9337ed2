-- Billing-period counters of one user per kind for the period containing a moment (default now).
-- Called by quota checks and usage pages; billable, succeeded usage only.
create or replace function tally.period_totals(user_id text, at timestamptz default now())
returns table (
  period_start date,
  period_end   date,
  kind         text,
  events       bigint,
  quantity     numeric,
  duration_ms  numeric,
  cost         numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Read before the query: on Citus it runs on the user's shard, where it may not call
  -- functions that read other distributed tables.
  user_tz     text := tally._user_time_zone(period_totals.user_id);
  user_anchor integer := tally._period_anchor(period_totals.user_id);
begin
  return query
  with settings as (
    select user_tz as tz, user_anchor as anchor
  ), bounds as (
    select st.tz, st.anchor,
           tally._period_start((period_totals.at at time zone st.tz)::date, st.anchor) as p_start
      from settings st
  )
  select b.p_start, tally._period_end(b.p_start, b.anchor), x.kind,
         sum(x.events)::bigint, sum(x.quantity), sum(x.duration_ms), sum(x.cost)
    from bounds b
    cross join lateral (
      select t.kind, t.events, t.quantity, t.duration_ms, t.cost
        from tally.user_periods t
       where t.user_id = period_totals.user_id and t.period_start = b.p_start
      union all
      select q.kind, q.events, q.quantity, q.duration_ms, q.cost
        from tally.pending_deltas q
       where q.user_id = period_totals.user_id and q.billable
         and tally._period_start((q.occurred_at at time zone b.tz)::date, b.anchor) = b.p_start
    ) as x
   group by b.p_start, b.anchor, x.kind
   order by x.kind;
end
$$;

comment on function tally.period_totals(text, timestamptz) is
  'Billing-period counters of a user per kind (billable, succeeded usage) for the period containing at; a new period starts at zero without any reset. Periods start on the running subscription''s day of month, else on the billing_anchor_day setting (on the last day of shorter months).';
