-- Records many events set-wise (the fast batch path, used by the client's record_many);
-- same validation, deduplication and aggregation as the row trigger. Returns how many were new.
create or replace function tally.record_usage_batch(
  event_ids          text[],
  user_ids           text[],
  kinds              text[],
  quantities         bigint[],
  occurred_ats       timestamptz[],
  durations_ms       bigint[],
  costs              numeric[],
  statuses           text[],
  error_codes        text[],
  billables          boolean[],
  attributes_list    jsonb[],
  corrects_event_ids text[]
)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  n integer := cardinality(event_ids);
begin
  if n is null or n = 0 then
    return 0;
  end if;
  if cardinality(user_ids) <> n or cardinality(kinds) <> n or cardinality(quantities) <> n
     or cardinality(occurred_ats) <> n or cardinality(durations_ms) <> n or cardinality(costs) <> n
     or cardinality(statuses) <> n or cardinality(error_codes) <> n or cardinality(billables) <> n
     or cardinality(attributes_list) <> n or cardinality(corrects_event_ids) <> n then
    raise exception using errcode = 'PT011', message = 'record_usage_batch: every array must have the same length';
  end if;

  if tally._is_distributed() then
    -- Citus: the set-wise statements of tally._record_rows cannot run there (a lateral join to a distributed
    -- table, data-modifying CTEs over several distributed tables), and a setting made with
    -- set_config does not reach the workers, where the row trigger fires. So the batch is
    -- validated here and its rows go through the row trigger on their user's shard.
    return tally._record_usage_batch_distributed(event_ids, user_ids, kinds, quantities, occurred_ats,
                                                 durations_ms, costs, statuses, error_codes, billables,
                                                 attributes_list, corrects_event_ids);
  end if;

  return tally._record_rows(false, event_ids, user_ids, kinds, quantities, occurred_ats, durations_ms, costs,
                            statuses, error_codes, billables, attributes_list, corrects_event_ids);
end
$$;

comment on function tally.record_usage_batch(text[], text[], text[], bigint[], timestamptz[], bigint[], numeric[], text[], text[], boolean[], jsonb[], text[]) is
  'Records a batch of usage events given as parallel arrays, set-wise: all-or-nothing validation, exactly-once by (user_id, event_id). Returns the number of new events.';
