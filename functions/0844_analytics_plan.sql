-- Validates the plan filter of an admin read: NULL (every event), a plan of tally.plans or of recorded events, or '' (events with no plan in force).
-- Called by the admin read functions; raises PT011 naming the argument for an unknown plan.
create or replace function tally._analytics_plan(plan text)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A plan of tally.plans, or one events were recorded under (a plan removed since, as of the last refresh).
  if plan is not null and plan <> ''
     and not exists (select from tally.plans p where p.plan = _analytics_plan.plan)
     and not exists (select from tally.admin_overview_mv o where o.time_window = 'all' and o.plan = _analytics_plan.plan) then
    raise exception using errcode = 'PT011', column = 'plan',
      message = format('plan %L is not a plan of tally.plans (NULL = every plan, '''' = events with no plan in force)', plan);
  end if;
  return plan;
end
$$;

comment on function tally._analytics_plan(text) is
  'Returns the plan filter of an admin read when it is NULL (every event), '''' (events recorded with no plan in force), a plan of tally.plans or a plan events were recorded under (as of the last refresh); raises PT011 otherwise (internal).';
