-- The summary card of one user: lifetime totals, per kind, top voices and models, and the current billing period against the plan's limits.
-- Called by account pages and the Python client's summary_card(); exact at commit (rollups + pending deltas).
create or replace function tally.summary_card(user_id text, top_n integer default 5, at timestamptz default now())
returns table (
  section         text,
  value           text,
  events          bigint,
  quantity        numeric,
  duration_ms     numeric,
  cost            numeric,
  first_at        timestamptz,
  last_at         timestamptz,
  quota           bigint,
  utilization_pct numeric,
  plan            text,
  period_start    date,
  period_end      date
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  plan_now text := tally.plan_at(user_id, at);
  anchor   integer := tally._period_anchor(user_id);
  p_start  date := tally._period_start((at at time zone tally._user_time_zone(user_id))::date, anchor);
  p_end    date := tally._period_end(p_start, anchor);
begin
  if top_n is null or top_n < 0 or top_n > 100 then
    raise exception using errcode = 'PT011', column = 'top_n',
      message = format('top_n must be between 0 and 100 (got %s)', coalesce(top_n::text, 'null'));
  end if;
  -- Sections: 'total' (one row), 'kind' (every kind), 'voice' and 'model' (top_n by
  -- duration, then quantity), 'period' (every kind used this period or limited by the plan).
  return query
  with kinds as (
    select * from tally.lifetime_totals(summary_card.user_id, 'kind')
  ), period as (
    select * from tally.period_totals(summary_card.user_id, summary_card.at)
  ), limits as (
    select l.kind, l.monthly_limit from tally.plan_limits l where l.plan = plan_now
  )
  select 'total', null::text, coalesce(sum(k.events), 0)::bigint, coalesce(sum(k.quantity), 0),
         coalesce(sum(k.duration_ms), 0),
         coalesce(sum(k.cost), 0), min(k.first_at), max(k.last_at), null::bigint, null::numeric,
         plan_now, p_start, p_end
    from kinds k
  union all
  (select 'kind', k.value, k.events, k.quantity, k.duration_ms, k.cost, k.first_at, k.last_at, null, null,
          plan_now, p_start, p_end
     from kinds k
    order by k.quantity desc, k.value)
  union all
  (select 'voice', v.value, v.events, v.quantity, v.duration_ms, v.cost, v.first_at, v.last_at, null, null,
          plan_now, p_start, p_end
     from tally.lifetime_totals(summary_card.user_id, 'voice') v
    where v.events > 0
    order by v.duration_ms desc, v.quantity desc, v.value
    limit top_n)
  union all
  (select 'model', m.value, m.events, m.quantity, m.duration_ms, m.cost, m.first_at, m.last_at, null, null,
          plan_now, p_start, p_end
     from tally.lifetime_totals(summary_card.user_id, 'model') m
    where m.events > 0
    order by m.duration_ms desc, m.quantity desc, m.value
    limit top_n)
  union all
  (select 'period', coalesce(p.kind, l.kind), coalesce(p.events, 0), coalesce(p.quantity, 0),
          coalesce(p.duration_ms, 0), coalesce(p.cost, 0), null, null, l.monthly_limit,
          case when l.monthly_limit > 0 then round(100.0 * coalesce(p.quantity, 0) / l.monthly_limit, 1)
               when l.monthly_limit = 0 then 100.0 end,
          plan_now, p_start, p_end
     from period p
     full join limits l on l.kind = p.kind
    order by coalesce(p.kind, l.kind));
end
$$;

comment on function tally.summary_card(text, integer, timestamptz) is
  'Summary card of a user as rows by section: total (one row), kind (lifetime per kind), voice and model (top_n by listened duration), period (current billing period per kind with the plan''s quota and utilization %); every row carries the plan in force and the period bounds. Exact at commit.';
