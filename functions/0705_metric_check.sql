-- Checks a metric name (events, quantity, duration_ms, cost) and returns it, raising PT011 naming the field otherwise.
-- Called by the comparison, peak, anomaly and pattern reads that take a metric.
create or replace function tally._check_metric(metric text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if metric is null or metric not in ('events', 'quantity', 'duration_ms', 'cost') then
    raise exception using errcode = 'PT011', column = 'metric',
      message = format('metric %L is not known: use events, quantity, duration_ms or cost', metric);
  end if;
  return metric;
end
$$;

comment on function tally._check_metric(text) is
  'Returns a valid metric name (events, quantity, duration_ms, cost); raises PT011 otherwise (internal).';
