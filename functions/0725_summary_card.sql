-- The summary card of one user: lifetime totals, per kind, the top values of each kind's featured dimension (voices, models), and the current billing period against the plan's limits.
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
  period_end      date,
  unit            text,
  display_name    text
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
  featured text;
begin
  if top_n is null or top_n < 0 or top_n > 100 then
    raise exception using errcode = 'PT011', column = 'top_n',
      message = format('top_n must be between 0 and 100 (got %s)', coalesce(top_n::text, 'null'));
  end if;
  -- Sections: 'total' (one row: events, cost, audio duration; the quantity only when every kind
  -- used counts in one unit), 'kind' (every kind, in its unit), one section per featured dimension
  -- of the kinds used (top_n values by duration, then quantity), 'period' (every kind used this
  -- period or limited by the plan). A duration is NULL when no event behind it had one (unknown).
  return query
  with k as (
    select t.value, t.events, t.quantity, t.duration_ms, t.cost, t.first_at, t.last_at,
           coalesce(r.unit, t.value) as unit, coalesce(r.display_name, t.value) as display_name,
           coalesce(r.audio, false) as audio, r.featured_dimension as featured
      from tally.lifetime_totals(summary_card.user_id, 'kind') t
      left join tally.kinds r on r.kind = t.value
  )
  select 'total', null::text, coalesce(sum(k.events), 0)::bigint,
         -- kinds that count no quantity (product events) make no sum mixed
         case when count(distinct k.unit) filter (where k.quantity <> 0) <= 1 then coalesce(sum(k.quantity), 0) end,
         -- listening time: audio kinds only (0 without any; NULL when their durations are unknown)
         case when count(*) filter (where k.audio) = 0 then 0 else sum(k.duration_ms) filter (where k.audio) end,
         coalesce(sum(k.cost), 0), min(k.first_at), max(k.last_at), null::bigint, null::numeric,
         plan_now, p_start, p_end,
         case when count(distinct k.unit) filter (where k.quantity <> 0) = 1 then min(k.unit) filter (where k.quantity <> 0) end,
         null::text
    from k
  union all
  (select 'kind', k.value, k.events, k.quantity, k.duration_ms, k.cost, k.first_at, k.last_at, null, null,
          plan_now, p_start, p_end, k.unit, k.display_name
     from k
    order by k.events desc, k.value);

  for featured in
    select distinct r.featured_dimension
      from tally.lifetime_totals(summary_card.user_id, 'kind') t
      join tally.kinds r on r.kind = t.value
     where r.featured_dimension is not null
     order by 1
  loop
    -- A featured dimension's values may come from several kinds: their quantities add
    -- only when those kinds count in one unit.
    return query
    select featured, v.value, v.events,
           case when u.units = 1 then v.quantity end, v.duration_ms, v.cost, v.first_at, v.last_at,
           null::bigint, null::numeric, plan_now, p_start, p_end,
           case when u.units = 1 then u.unit end, null::text
      from tally.lifetime_totals(summary_card.user_id, featured) v
     cross join (select count(distinct r.unit) as units, min(r.unit) as unit
                   from tally.lifetime_totals(summary_card.user_id, 'kind') t
                   join tally.kinds r on r.kind = t.value
                  where r.featured_dimension = featured and t.quantity <> 0) as u
     where v.events > 0
     order by v.duration_ms desc nulls last, v.quantity desc, v.value
     limit top_n;
  end loop;

  return query
  with period as (
    select * from tally.period_totals(summary_card.user_id, summary_card.at)
  ), limits as (
    select l.kind, l.monthly_limit from tally.plan_limits l where l.plan = plan_now
  )
  select 'period', coalesce(p.kind, l.kind), coalesce(p.events, 0), coalesce(p.quantity, 0),
         coalesce(p.duration_ms, 0), coalesce(p.cost, 0), null::timestamptz, null::timestamptz, l.monthly_limit,
         case when l.monthly_limit > 0 then round(100.0 * coalesce(p.quantity, 0) / l.monthly_limit, 1)
              when l.monthly_limit = 0 then 100.0 end,
         plan_now, p_start, p_end, tally._kind_unit(coalesce(p.kind, l.kind)),
         coalesce((select r.display_name from tally.kinds r where r.kind = coalesce(p.kind, l.kind)), coalesce(p.kind, l.kind))
    from period p
    full join limits l on l.kind = p.kind
   order by coalesce(p.kind, l.kind);
end
$$;

comment on function tally.summary_card(text, integer, timestamptz) is
  'Summary card of a user as rows by section: total (one row: events, cost, audio duration, and the quantity only when every kind used counts in one unit), kind (lifetime per kind in its unit), one section per featured dimension of the kinds used (voice, model: top_n values by duration), period (current billing period per kind with the plan''s quota and utilization %); every row carries the plan in force, the period bounds (end exclusive), the unit and display name. Durations are NULL when unknown. Exact at commit.';
