-- A funnel's rows from its users per step: conversion from step 1 and from the previous step, drop-off, the minimum group size.
-- Called by tally.admin_funnel and tally.admin_funnel_window (the one place that shapes a funnel for analysts).
create or replace function tally._funnel_table(step_kinds text[], step_users bigint[], as_of timestamptz)
returns table (step integer, kind text, users bigint, conversion_pct numeric, step_conversion_pct numeric,
               drop_off bigint, drop_off_pct numeric, refreshed_at timestamptz)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- PL/pgSQL, not SQL: the plan is cached for the session (a SQL function with SET is planned at every call).
  return query
  with counts as (
    select o.n::integer as n, o.kind, coalesce(step_users[o.n], 0) as users
      from unnest(step_kinds) with ordinality as o(kind, n)
  ), shown as (
    -- A step fewer users than the minimum group size reached counts as reached
    -- by none (so do the steps after it: they were reached by fewer): a narrow
    -- timeframe cannot follow one user through the steps.
    select c.n, c.kind, case when c.users >= m.k or m.k <= 1 then c.users else 0 end as users
      from counts c
     cross join (select tally._analytics_min_group_size() as k) m
  )
  select c.n, c.kind, c.users,
         round(100.0 * c.users / nullif(first_value(c.users) over w, 0), 2),
         round(100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         coalesce(lag(c.users) over w, c.users) - c.users,
         round(100 - 100.0 * c.users / nullif(coalesce(lag(c.users) over w, c.users), 0), 2),
         as_of
    from shown c
  window w as (order by c.n)
   order by c.n;
end
$$;

comment on function tally._funnel_table(text[], bigint[], timestamptz) is
  'The rows of a funnel from its kinds and users per step (tally._funnel_counts): conversion from step 1 and from the previous step, drop-off; a step reached by fewer users than the minimum group size shows 0 users; refreshed_at = as_of (internal).';
