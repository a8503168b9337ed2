-- Refuses a funnel that is not 1 to 20 distinct, non-empty kinds (PT011).
-- Called by tally.admin_funnel, tally.admin_funnel_window and tally.declare_funnel.
create or replace function tally._check_funnel_steps(steps text[])
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if steps is null or cardinality(steps) not between 1 and 20 or array_position(steps, null) is not null
     or '' = any (steps) or (select count(distinct s) from unnest(steps) as s) <> cardinality(steps) then
    raise exception using errcode = 'PT011', column = 'steps',
      message = format('steps must be 1 to 20 distinct, non-empty kinds (got %s)', coalesce(steps::text, 'null'));
  end if;
end
$$;

comment on function tally._check_funnel_steps(text[]) is
  'Raises PT011 unless steps are 1 to 20 distinct, non-empty kinds (internal; the funnel functions call it).';
