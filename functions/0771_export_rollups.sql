-- Daily rollups of one user per dimension, local day and value in a range of local days, for CSV export.
-- Called by the Python client's export_rollups_csv() and `pgtally export --rollups`; exact at commit (rollups + pending deltas).
create or replace function tally.export_rollups(user_id text, from_day date, to_day date, dimension_name text default null)
returns table (
  day         date,
  dimension   text,
  value       text,
  events      bigint,
  failures    bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if export_rollups.dimension_name is not null then
    perform tally._dimension_keys(export_rollups.dimension_name);
  end if;
  if from_day is null or to_day is null or to_day < from_day then
    raise exception using errcode = 'PT011', column = 'to_day',
      message = format('need from_day <= to_day (got %s .. %s)', coalesce(from_day::text, 'null'), coalesce(to_day::text, 'null'));
  end if;
  return query
  select t.day, d.name, t.value, t.events, t.failures, t.quantity, t.duration_ms, t.cost
    from tally.dimensions d
   cross join lateral tally.daily_totals(export_rollups.user_id, d.name, from_day, to_day) t
   where export_rollups.dimension_name is null or d.name = export_rollups.dimension_name
   order by t.day, d.name, t.value;
end
$$;

comment on function tally.export_rollups(text, date, date, text) is
  'Daily rollups of a user (local days from_day..to_day) per declared dimension (or the one given) and value: events, failures, quantity, duration, cost. Exact at commit. For a CSV file, pass dimension and value through tally._csv_safe (values are producers'' attribute values).';
