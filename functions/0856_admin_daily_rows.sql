-- The rows of tally.admin_daily for some UTC days (NULL: every day), aggregated from the per-user rows.
-- Called by tally._refresh_admin_daily (the days a refresh re-aggregates) and by tests (a full re-aggregation).
create or replace function tally._admin_daily_rows(days date[])
returns setof tally.admin_daily
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- One query text for every day and for some days (only its filter differs), so the
  -- incremental refresh and a full re-aggregation cannot drift apart. With days given,
  -- the rollup is read through its (dimension, day) index, one dimension at a time
  -- (the dimensions present found by skipping through the same index).
  return query execute pg_catalog.format($q$
  with %3$s rows as (
    select v.user_id, v.day, v.plan, v.dimension, v.value, v.kind, v.events, v.succeeded, v.failures, v.quantity,
           v.duration_ms, v.cost
      from %1$s
    union all
    -- Pending deltas (no window bounds: every whole day).
    select d.user_id, d.day, d.plan, d.dimension, d.value, d.kind, d.events, d.succeeded, d.failures, d.quantity,
           d.duration_ms, d.cost
      from tally._analytics_delta_values('-infinity', 'infinity') d
     where true %2$s
  ), units as (
    -- The unit of each row's quantity (tally.kinds; a kind never declared counts in a unit of its own).
    select r.*, coalesce(k.unit, r.kind) as unit
      from rows r
      left join tally.kinds k on k.kind = r.kind
  ), per_user as (
    select case when grouping(r.plan) = 1 then '*' else r.plan end as plan, r.dimension, r.day, r.value,
           sum(r.events) as events, sum(r.succeeded) as succeeded, sum(r.failures) as failures,
           sum(r.quantity) as quantity, sum(r.duration_ms) as duration_ms, sum(r.cost) as cost,
           min(r.unit) filter (where r.quantity <> 0) as lo, max(r.unit) filter (where r.quantity <> 0) as hi,
           min(r.unit) as lo_any, max(r.unit) as hi_any,
           sum(r.succeeded) > 0 or sum(r.failures) > 0 as active
      from units r
     group by grouping sets ((r.plan, r.dimension, r.day, r.value, r.user_id), (r.dimension, r.day, r.value, r.user_id))
  ), groups as (
    select u.dimension, u.plan, u.day, u.value, sum(u.events) as events, sum(u.succeeded) as succeeded,
           sum(u.failures) as failures, sum(u.quantity) as quantity, min(u.lo) as lo, max(u.hi) as hi,
           min(u.lo_any) as lo_any, max(u.hi_any) as hi_any, sum(u.duration_ms) as duration_ms, sum(u.cost) as cost,
           count(*) filter (where u.active) as users
      from per_user u
     group by u.dimension, u.plan, u.day, u.value
  )
  select g.dimension, g.plan, g.day, g.value,
         g.events::bigint,
         g.succeeded::bigint,
         g.failures::bigint,
         -- Quantities of kinds of different units are never added: NULL then.
         case when g.lo is distinct from g.hi then null else g.quantity end,
         case when g.lo is distinct from g.hi then null when g.lo is not null then g.lo
              when g.lo_any = g.hi_any then g.lo_any end,
         g.duration_ms,
         g.cost,
         g.users
    from groups g
  $q$,
    case when days is null then 'tally.user_daily_values v'
         else 'dims join tally.user_daily_values v on v.dimension = dims.name and v.day = any ($1)' end,
    case when days is null then '' else 'and d.day = any ($1)' end,
    case when days is null then '' else $d$recursive dims (name) as (
      select min(x.dimension) from tally.user_daily_values x
      union all
      select (select min(x.dimension) from tally.user_daily_values x where x.dimension > dims.name)
        from dims
       where dims.name is not null
    ),$d$ end)
  using days;
end
$$;

comment on function tally._admin_daily_rows(date[]) is
  'The rows of tally.admin_daily for the given UTC days (NULL: every day): tally.user_daily_values plus pending deltas, per dimension, plan (''*'' = all plans), day and value, users counted once per group (internal; the refresh re-aggregates with it, tests compare the table with it).';
