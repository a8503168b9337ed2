-- Validation of new events: every rule has its SQLSTATE (class PT), through a plain INSERT,
-- tally.record_usage and tally.record_usage_batch; a refused event writes nothing.
begin;
select plan(79);

select ok(tests.tts('ok1', 'u1', '2026-11-10 10:00:00+00'), 'a valid event of u1 records');
select ok(tests.tts('other1', 'u2', '2026-11-10 10:00:00+00'), 'a valid event of u2 records');
select is(tests.counts(), 'events=2 keys=2 pending=2', 'baseline: two events, two keys, two deltas');

-- PT001: missing field
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind) values (null, 'u1', 'tts')$$,
                 'PT001', 'event_id is required', 'INSERT: null event_id is PT001');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind) values ('', 'u1', 'tts')$$,
                 'PT001', 'event_id is required', 'INSERT: empty event_id is PT001');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind) values ('v1', null, 'tts')$$,
                 'PT001', 'user_id is required', 'INSERT: null user_id is PT001');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind) values ('v1', 'u1', '')$$,
                 'PT001', 'kind is required', 'INSERT: empty kind is PT001');
select throws_ok($$select tally.record_usage(null, 'u1', 'tts')$$,
                 'PT001', 'event_id is required', 'record_usage: null event_id is PT001');
select throws_ok($$select tally.record_usage('v1', '', 'tts')$$,
                 'PT001', 'user_id is required', 'record_usage: empty user_id is PT001');
select throws_ok($$select tally.record_usage('v1', 'u1', null)$$,
                 'PT001', 'kind is required', 'record_usage: null kind is PT001');

-- PT002: negative amount outside a correction, NaN, null amount
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity) values ('v1', 'u1', 'tts', -1)$$,
                 'PT002', null, 'INSERT: negative quantity is PT002');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, duration_ms) values ('v1', 'u1', 'tts', -1)$$,
                 'PT002', null, 'INSERT: negative duration_ms is PT002');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, cost) values ('v1', 'u1', 'tts', -0.5)$$,
                 'PT002', null, 'INSERT: negative cost is PT002');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, cost) values ('v1', 'u1', 'tts', 'NaN')$$,
                 'PT002', null, 'INSERT: NaN cost is PT002');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity) values ('v1', 'u1', 'tts', null)$$,
                 'PT002', null, 'INSERT: null quantity is PT002');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', quantity => -5)$$,
                 'PT002', 'quantity must not be negative outside a correction (got -5)', 'record_usage: negative quantity is PT002');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', duration_ms => -1)$$,
                 'PT002', null, 'record_usage: negative duration_ms is PT002');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', cost => -0.01)$$,
                 'PT002', null, 'record_usage: negative cost is PT002');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', cost => 'NaN')$$,
                 'PT002', null, 'record_usage: NaN cost is PT002');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', quantity => null)$$,
                 'PT002', null, 'record_usage: null quantity is PT002');

-- PT003: unknown status, reversed without corrects_event_id
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, status) values ('v1', 'u1', 'tts', 'done')$$,
                 'PT003', null, 'INSERT: unknown status is PT003');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, status) values ('v1', 'u1', 'tts', 'reversed')$$,
                 'PT003', null, 'INSERT: reversed without corrects_event_id is PT003');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', status => 'Succeeded')$$,
                 'PT003', null, 'record_usage: status is case-sensitive (Succeeded is PT003)');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', status => 'reversed')$$,
                 'PT003', 'status reversed is only valid on a correction (corrects_event_id set)',
                 'record_usage: reversed without corrects_event_id is PT003');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', status => null)$$,
                 'PT003', null, 'record_usage: null status is PT003');

-- PT004: occurred_at out of range
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, occurred_at) values ('v1', 'u1', 'tts', '1999-12-31 23:59:59+00')$$,
                 'PT004', null, 'INSERT: occurred_at before 2000-01-01 is PT004');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, occurred_at) values ('v1', 'u1', 'tts', null)$$,
                 'PT004', null, 'INSERT: explicit null occurred_at is PT004');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', occurred_at => now() + interval '2 days')$$,
                 'PT004', null, 'record_usage: occurred_at two days ahead is PT004');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', occurred_at => '1970-01-01 00:00:00+00')$$,
                 'PT004', null, 'record_usage: occurred_at in 1970 is PT004');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', occurred_at => null)$$,
                 'PT004', null, 'record_usage: null occurred_at is PT004');

-- PT005: attributes not an object
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, attributes) values ('v1', 'u1', 'tts', '[]')$$,
                 'PT005', 'attributes must be a JSON object (got array)', 'INSERT: array attributes is PT005');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, attributes) values ('v1', 'u1', 'tts', null)$$,
                 'PT005', null, 'INSERT: SQL null attributes is PT005');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', attributes => '"af_alloy"')$$,
                 'PT005', 'attributes must be a JSON object (got string)', 'record_usage: string attributes is PT005');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', attributes => 'null')$$,
                 'PT005', null, 'record_usage: JSON null attributes is PT005');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', attributes => null)$$,
                 'PT005', null, 'record_usage: SQL null attributes is PT005');

-- PT006: attributes over 16384 bytes
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, attributes)
                   values ('v1', 'u1', 'tts', jsonb_build_object('blob', repeat('x', 20000)))$$,
                 'PT006', null, 'INSERT: 20 kB of attributes is PT006');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', attributes => jsonb_build_object('blob', repeat('x', 20000)))$$,
                 'PT006', null, 'record_usage: 20 kB of attributes is PT006');

-- PT007: text field too long
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind) values (repeat('e', 201), 'u1', 'tts')$$,
                 'PT007', null, 'INSERT: 201-character event_id is PT007');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, corrects_event_id, quantity)
                   values ('v1', 'u1', 'tts', repeat('o', 201), -1)$$,
                 'PT007', null, 'INSERT: 201-character corrects_event_id is PT007');
select throws_ok($$select tally.record_usage('v1', repeat('u', 201), 'tts')$$,
                 'PT007', null, 'record_usage: 201-character user_id is PT007');
select throws_ok($$select tally.record_usage('v1', 'u1', repeat('k', 65))$$,
                 'PT007', null, 'record_usage: 65-character kind is PT007');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', status => 'failed', error_code => repeat('x', 201))$$,
                 'PT007', null, 'record_usage: 201-character error_code is PT007');

-- PT008: bad correction
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', quantity => -1, corrects_event_id => 'never-recorded')$$,
                 'PT008', null, 'record_usage: correcting an unknown event is PT008');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, corrects_event_id)
                   values ('v1', 'u1', 'tts', -1, 'other1')$$,
                 'PT008', null, 'INSERT: correcting another user''s event is PT008');
select throws_ok($$select tally.record_usage('v1', 'u1', 'tts', status => 'reversed', corrects_event_id => 'other1')$$,
                 'PT008', null, 'record_usage: reversing another user''s event is PT008');
select throws_ok($$select tally.record_usage('self1', 'u1', 'tts', quantity => 1, corrects_event_id => 'self1')$$,
                 'PT008', null, 'record_usage: an event correcting itself is PT008');
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, quantity, corrects_event_id)
                   values ('ok1', 'u1', 'tts', 1, 'ok1')$$,
                 'PT008', null, 'INSERT: a recorded event_id correcting itself is PT008');

-- The trigger guards the partitions too.
select throws_ok($$insert into tally.usage_events_default (event_id, user_id, kind, quantity, occurred_at)
                   values ('v1', 'u1', 'tts', -1, '2025-03-01 00:00:00+00')$$,
                 'PT002', null, 'INSERT directly into a partition is validated as well');

select is(tests.counts(), 'events=2 keys=2 pending=2', 'no refused event wrote a row, a key or a delta');
select is(tests.lifetime_of('u1', 'kind'), 'tts e1 q100 d7000 c0.001 f0', 'u1''s totals are unchanged');

-- record_usage_batch: all-or-nothing, the detail names the bad row.
select is(tests.error_of($$select tests.batch(array['b1', 'b2', 'b3'], 'u1', array[1, -1, 3]::bigint[])$$),
          'PT002: quantity must not be negative outside a correction (got -1) [batch row 2 (event_id ''b2'')]',
          'batch: one negative quantity refuses the batch, naming row 2');
select is(tests.counts(), 'events=2 keys=2 pending=2', 'batch: the good rows around the bad one were not written');
select throws_ok($$select tests.batch(array['b1', ''], 'u1', array[1, 2]::bigint[])$$,
                 'PT001', null, 'batch: empty event_id is PT001');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, 2]::bigint[], costs => array[1, 'NaN']::numeric[])$$,
                 'PT002', null, 'batch: NaN cost is PT002');
select throws_ok($$select tests.batch(array['b1', 'b2', 'b3'], 'u1', array[1, 2, 3]::bigint[],
                                      statuses => array['succeeded', 'failed', 'lost'])$$,
                 'PT003', null, 'batch: unknown status is PT003');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, 2]::bigint[],
                                      statuses => array['succeeded', 'reversed'])$$,
                 'PT003', null, 'batch: reversed without corrects_event_id is PT003');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, 2]::bigint[],
                                      occurred_ats => array['2026-11-10 10:00:00+00', '1999-06-01 00:00:00+00']::timestamptz[])$$,
                 'PT004', null, 'batch: occurred_at before 2000 is PT004');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, 2]::bigint[],
                                      attributes_list => array['{}', '[1]']::jsonb[])$$,
                 'PT005', null, 'batch: array attributes is PT005');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, 2]::bigint[],
                                      attributes_list => array['{}'::jsonb, jsonb_build_object('blob', repeat('x', 20000))])$$,
                 'PT006', null, 'batch: 20 kB of attributes is PT006');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, 2]::bigint[], kinds => array['tts', repeat('k', 65)])$$,
                 'PT007', null, 'batch: 65-character kind is PT007');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, -1]::bigint[], corrects_event_ids => array[null, 'never-recorded'])$$,
                 'PT008', null, 'batch: correcting an unknown event is PT008');
select throws_ok($$select tests.batch(array['b1', 'b2'], 'u1', array[1, -1]::bigint[], corrects_event_ids => array[null, 'other1'])$$,
                 'PT008', null, 'batch: correcting another user''s event is PT008');
select throws_ok($$select tally.record_usage_batch(array['b1', 'b2'], array['u1', 'u1'], array['tts', 'tts'], array[1, 2]::bigint[],
                                                    array[now(), now()], array[null, null]::bigint[], array[0, 0]::numeric[],
                                                    array['succeeded', 'succeeded'], array[null, null]::text[], array[true, true],
                                                    array['{}']::jsonb[], array[null, null]::text[])$$,
                 'PT011', null, 'batch: arrays of different lengths are PT011');
select is(tests.counts(), 'events=2 keys=2 pending=2', 'no refused batch wrote anything');

-- Other bad arguments are PT011.
select throws_ok($$select tally.merge_pending(0)$$, 'PT011', null, 'merge_pending(0) is PT011');
select throws_ok($$select * from tally.daily_totals('u1', 'kind', '2026-11-10', '2026-11-09')$$, 'PT011', null,
                 'daily_totals with to_day before from_day is PT011');
select throws_ok($$select tally.set_user_settings('u1', 'Mars/Olympus_Mons', 1)$$, 'PT011', null,
                 'set_user_settings with an unknown time zone is PT011');
select throws_ok($$select tally.set_user_settings('u1', 'UTC', 29)$$, 'PT011', null,
                 'set_user_settings with anchor day 29 is PT011');
select throws_ok($$select tally.declare_dimension('Voice Model', array['voice'])$$, 'PT011', null,
                 'declare_dimension with a non-identifier name is PT011');
select throws_ok($$select tally.ensure_partitions('2026-12-01', '2026-11-01')$$, 'PT011', null,
                 'ensure_partitions with to_month before from_month is PT011');
select throws_ok($$select * from tally.apply_retention('1 hour')$$, 'PT011', null,
                 'apply_retention keeping less than a day is PT011');

-- What is accepted at the limits.
select ok(tally.record_usage('edge-2000', 'u1', 'tts', 1, occurred_at => '2000-01-01 00:00:00+00'),
          'occurred_at exactly 2000-01-01 00:00 UTC is accepted');
select ok(tally.record_usage(repeat('e', 200), repeat('u', 200), repeat('k', 64), 1, occurred_at => '2026-11-10 10:00:00+00'),
          '200-character ids and a 64-character kind are accepted');
select ok(tally.record_usage('edge-attrs', 'u1', 'tts', 1, occurred_at => '2026-11-10 10:00:00+00',
                             attributes => jsonb_build_object('blob', repeat('x', 16000))),
          'about 16 000 bytes of attributes are accepted');
select ok(tally.record_usage('edge-corr', 'u1', 'tts', -10, occurred_at => '2026-11-10 10:00:00+00',
                             duration_ms => -100, cost => -0.0001, corrects_event_id => 'ok1'),
          'negative amounts are accepted on a correction');
select is(tests.batch(array['bo1', 'bc1'], 'u1', array[5, -3]::bigint[], corrects_event_ids => array[null, 'bo1']), 2,
          'batch: a correction of an original earlier in the same batch is accepted');
select is(tests.counts(), 'events=8 keys=8 pending=8', 'the six events accepted at the limits wrote a row, a key and a delta each');

-- Non-finite money: numeric also has Infinity (PostgreSQL 14+), which poisons every cost sum like NaN does.
select throws_ok($$select tally.record_usage('inf1', 'u1', 'tts', 1, cost => 'Infinity')$$,
                 'PT002', null, 'record_usage: Infinity cost is PT002 like NaN');

-- The size limit must hold for attributes that arrive compressed (INSERT ... SELECT from a staging table).
create temp table staged_attrs as select jsonb_build_object('blob', repeat('x', 20000)) as attributes;
select throws_ok($$insert into tally.usage_events (event_id, user_id, kind, occurred_at, attributes)
                   select 'big-staged', 'u1', 'tts', '2026-11-10 10:00:00+00', attributes from staged_attrs$$,
                 'PT006', null, 'INSERT ... SELECT: 20 kB of (compressed) attributes is PT006');

select * from finish();
rollback;
