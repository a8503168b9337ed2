-- The usage log's data contract: names and types other services rely on.
begin;
select plan(17);

select has_table('tally', 'usage_events', 'the usage log exists');
select columns_are('tally', 'usage_events', array[
  'event_id', 'user_id', 'kind', 'occurred_at', 'recorded_at', 'quantity', 'duration_ms', 'cost',
  'status', 'error_code', 'billable', 'attributes', 'corrects_event_id', 'plan'], 'the log has exactly the contract columns');
select col_type_is('tally', 'usage_events', 'event_id', 'text', 'event_id is text');
select col_type_is('tally', 'usage_events', 'user_id', 'text', 'user_id is text');
select col_type_is('tally', 'usage_events', 'occurred_at', 'timestamp with time zone', 'occurred_at is timestamptz');
select col_type_is('tally', 'usage_events', 'quantity', 'bigint', 'quantity is bigint');
select col_type_is('tally', 'usage_events', 'duration_ms', 'bigint', 'duration_ms is bigint');
select col_type_is('tally', 'usage_events', 'cost', 'numeric', 'cost is exact numeric');
select col_type_is('tally', 'usage_events', 'attributes', 'jsonb', 'attributes is jsonb');
select col_is_null('tally', 'usage_events', 'duration_ms', 'duration_ms is nullable (unknown)');
select col_default_is('tally', 'usage_events', 'status', 'succeeded', 'status defaults to succeeded');
select col_default_is('tally', 'usage_events', 'billable', 'true', 'billable defaults to true');
select is((select relkind::text from pg_class where oid = 'tally.usage_events'::regclass), 'p', 'the log is partitioned');
select is((select pg_get_partkeydef('tally.usage_events'::regclass)), 'RANGE (occurred_at)', 'partitioned by occurred_at');
select is((select count(*)::int from pg_constraint where contype = 'f'
            and (conrelid = 'tally.usage_events'::regclass or confrelid = 'tally.usage_events'::regclass)), 0,
          'no foreign key ties the log to other tables');
select ok(tally.record_usage('c1', 'u1', 'tts'), 'a minimal event records');
select ok((select recorded_at is not null from tally.usage_events where event_id = 'c1'),
          'recorded_at is set by the database');

select * from finish();
rollback;
