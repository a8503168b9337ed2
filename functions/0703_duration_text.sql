-- A duration for people, like the client's human_duration: '14 h 12 min', '3 min 05 s', '42 s'.
-- Called by tally.usage_insights.
create or replace function tally._duration_text(ms bigint)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when ms is null then 'unknown'
    when s >= 3600 then format('%s h %s min', s / 3600, lpad(((s % 3600) / 60)::text, 2, '0'))
    when s >= 60 then format('%s min %s s', s / 60, lpad((s % 60)::text, 2, '0'))
    else format('%s s', s)
  end
    from (select round(ms / 1000.0)::bigint as s) as x
$$;

comment on function tally._duration_text(bigint) is
  'Duration in milliseconds as text for people (''14 h 12 min'', ''3 min 05 s'', ''42 s'') (internal).';
