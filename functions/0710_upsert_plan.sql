-- Creates or updates a plan with its tier, monthly price and per-kind limits (the limits given replace the old ones).
-- Called by billing admins and the Python client's upsert_plan().
create or replace function tally.upsert_plan(plan text, tier integer, monthly_price numeric,
                                             limits jsonb default '{}', is_default boolean default false,
                                             description text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  bad text;
begin
  if plan is null or plan !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' then
    raise exception using errcode = 'PT011', column = 'plan',
      message = format('plan %L must be 1-63 characters of a-z, 0-9, _, . or - (starting with a letter or digit)', plan);
  elsif tier is null or tier < 0 then
    raise exception using errcode = 'PT011', column = 'tier',
      message = format('tier must be a non-negative integer (got %s)', coalesce(tier::text, 'null'));
  elsif monthly_price is null or monthly_price < 0 or monthly_price >= 1e12 then
    raise exception using errcode = 'PT011', column = 'monthly_price',
      message = format('monthly_price must be between 0 and 1e12 (got %s)', coalesce(monthly_price::text, 'null'));
  elsif limits is null or jsonb_typeof(limits) <> 'object' then
    raise exception using errcode = 'PT011', column = 'limits',
      message = 'limits must be a JSON object of kind -> non-negative integer (or null for unlimited)';
  end if;
  select l.key into bad
    from jsonb_each(limits) l
   where l.key = '' or length(l.key) > 64
      or not (jsonb_typeof(l.value) = 'null'
              or (jsonb_typeof(l.value) = 'number' and l.value::text ~ '^[0-9]{1,18}$'))
   limit 1;
  if found then
    raise exception using errcode = 'PT011', column = 'limits',
      message = format('limit of kind %L must be a non-negative integer or null (got %s)', bad, limits -> bad);
  end if;

  if is_default then
    update tally.plans p set is_default = false, updated_at = now()
     where p.is_default and p.plan <> upsert_plan.plan;
  end if;
  insert into tally.plans as p (plan, tier, monthly_price, is_default, description)
  values (upsert_plan.plan, upsert_plan.tier, upsert_plan.monthly_price, upsert_plan.is_default, upsert_plan.description)
  on conflict on constraint plans_pkey do update set
    tier = excluded.tier, monthly_price = excluded.monthly_price, is_default = excluded.is_default,
    description = excluded.description, updated_at = excluded.updated_at;  -- the default now(): Citus allows no volatile call here

  delete from tally.plan_limits l where l.plan = upsert_plan.plan;
  insert into tally.plan_limits (plan, kind, monthly_limit)
  select upsert_plan.plan, x.key, x.value::text::bigint
    from jsonb_each(limits) x
   where jsonb_typeof(x.value) = 'number'
   order by x.key;
end
$$;

comment on function tally.upsert_plan(text, integer, numeric, jsonb, boolean, text) is
  'Creates or replaces a plan: tier, monthly price, limits as {"kind": quantity per billing period} (null or absent = unlimited), and whether it is the default plan of users without a subscription. Running subscriptions keep the price they started with.';
