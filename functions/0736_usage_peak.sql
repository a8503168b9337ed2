-- The peak bucket of a range: the day, week or month with the most usage by a metric (earliest on ties).
-- Called by usage pages and the Python client's usage_peak(); no row when the range has no usage.
create or replace function tally.usage_peak(user_id text, range text default '12m', bucket text default 'month',
                                            metric text default 'quantity', kind text default null,
                                            from_day date default null, to_day date default null,
                                            at timestamptz default now())
returns table (
  bucket_start date,
  bucket_end   date,
  value        numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  m text := tally._check_metric(metric);
begin
  return query
  select h.bucket_start, h.bucket_end,
         sum(case m when 'events' then h.events::numeric when 'quantity' then h.quantity::numeric
                    when 'duration_ms' then h.duration_ms::numeric else h.cost end) as v
    from tally.usage_history(usage_peak.user_id, range, bucket, case when kind is null then null else 'kind' end,
                             from_day, to_day, at) h
   where usage_peak.kind is null or h.value = usage_peak.kind
   group by h.bucket_start, h.bucket_end
  having sum(case m when 'events' then h.events::numeric when 'quantity' then h.quantity::numeric
                    when 'duration_ms' then h.duration_ms::numeric else h.cost end) > 0
   order by v desc, h.bucket_start
   limit 1;
end
$$;

comment on function tally.usage_peak(text, text, text, text, text, date, date, timestamptz) is
  'Peak bucket (day, week or month) of a range by a metric (events, quantity, duration_ms, cost), for one kind or all; the earliest wins ties; no row when the range has no usage. Exact at commit.';
