-- Removes a plan and its limits, unless a subscription (past or running) refers to it; true when it existed.
-- Called by billing admins and `pgtally plan remove`.
create or replace function tally.remove_plan(plan text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  users bigint;
begin
  select count(distinct s.user_id) into users from tally.subscriptions s where s.plan = remove_plan.plan;
  if users > 0 then
    raise exception using errcode = 'PT011', column = 'plan',
      message = format('plan %L is in the subscription history of %s user(s): it cannot be removed', plan, users),
      hint = 'Subscriptions keep the plan they were sold on; make another plan the default instead.';
  end if;
  delete from tally.plans p where p.plan = remove_plan.plan;  -- its limits go with it (on delete cascade)
  return found;
end
$$;

comment on function tally.remove_plan(text) is
  'Deletes a plan with its limits and returns true; false when there is no such plan. PT011 (plan) when any subscription, past or running, refers to it: the history keeps the plans it names.';
