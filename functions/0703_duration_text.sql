-- A duration for people, like the client's human_duration: '14 h 12 min', '3 min 05 s', '42 s'.
-- Called by tally.usage_insights.
create or replace function tally._duration_text(ms numeric)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- Integer arithmetic on numeric, never through interval: a summed duration has no upper bound.
  select case
    when ms is null then 'unknown'
    when s >= 3600 then format('%s h %s min', div(s, 3600), lpad(div(mod(s, 3600), 60)::text, 2, '0'))
    when s >= 60 then format('%s min %s s', div(s, 60), lpad(mod(s, 60)::text, 2, '0'))
    else format('%s s', s)
  end
    from (select round(ms / 1000) as s) as x
$$;

comment on function tally._duration_text(numeric) is
  'Duration in milliseconds as text for people (''14 h 12 min'', ''3 min 05 s'', ''42 s''); exact for any numeric sum (internal).';
