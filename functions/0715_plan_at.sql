-- The plan in force for a user at a moment: the subscription running then, else the default plan (NULL when none).
-- Called by the quota check, the forecast, the summary card and by producers that want to stamp an event with its plan.
create or replace function tally.plan_at(user_id text, at timestamptz default now())
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select coalesce(
    (select s.plan
       from tally.subscriptions s
      where s.user_id = plan_at.user_id and s.started_at <= plan_at.at
        and (s.ended_at is null or s.ended_at > plan_at.at)
      order by s.started_at desc
      limit 1),
    (select p.plan from tally.plans p where p.is_default))
  );
end
$$;

comment on function tally.plan_at(text, timestamptz) is
  'The plan in force for a user at a moment: the subscription running at that moment, else the default plan, else NULL.';
