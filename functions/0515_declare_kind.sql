-- Declares a kind of usage or changes its declaration: unit, display name, audio or not, featured dimension.
-- Called by operators (SQL or `pgtally kind declare`); a new kind is one call, no code.
create or replace function tally.declare_kind(kind text, unit text, display_name text default null,
                                              audio boolean default false, featured_dimension text default null)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if kind is null or kind = '' or length(kind) > 64 then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required (at most 64 characters)';
  elsif unit is null or unit !~ '^[a-z][a-z0-9_ ]{0,31}$' then
    raise exception using errcode = 'PT011', column = 'unit',
      message = format('unit %L must be a lower-case word of at most 32 characters (characters, pages, tokens, ...)', unit);
  elsif display_name is not null and (display_name = '' or length(display_name) > 80) then
    raise exception using errcode = 'PT011', column = 'display_name', message = 'display_name must have 1 to 80 characters';
  elsif audio is null then
    raise exception using errcode = 'PT011', column = 'audio', message = 'audio must be true or false';
  elsif featured_dimension is not null
        and not exists (select from tally.dimensions d where d.name = declare_kind.featured_dimension) then
    raise exception using errcode = 'PT011', column = 'featured_dimension',
      message = format('dimension %L is not declared', featured_dimension), hint = 'Declare it with tally.declare_dimension.';
  end if;
  insert into tally.kinds as k (kind, unit, display_name, audio, featured_dimension)
  values (declare_kind.kind, declare_kind.unit, coalesce(declare_kind.display_name, declare_kind.kind),
          declare_kind.audio, declare_kind.featured_dimension)
  on conflict on constraint kinds_pkey do update
    set unit = excluded.unit, display_name = excluded.display_name, audio = excluded.audio,
        featured_dimension = excluded.featured_dimension, declared_at = excluded.declared_at;  -- the default now(), as Citus requires
end
$$;

comment on function tally.declare_kind(text, text, text, boolean, text) is
  'Declares a kind (or changes it): the unit its quantity counts in, a display name (default: the kind), whether its duration is audio, and the dimension its summary card features. Reads apply it at once; nothing is stored per event.';

-- The unit of a kind's quantity: the declared one, else a unit of its own (the kind itself).
-- Called by every read that adds quantities of several kinds.
create or replace function tally._kind_unit(kind text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select k.unit from tally.kinds k where k.kind = _kind_unit.kind), _kind_unit.kind)
$$;

comment on function tally._kind_unit(text) is
  'Unit of a kind''s quantity: the declared unit, or the kind itself for a kind never declared (so it adds to no other kind). Internal.';
