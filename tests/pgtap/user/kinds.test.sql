-- The kinds registry: every kind's quantity counts in one unit, and no read adds quantities of
-- different units; only audio kinds make listening time; the card features each kind's dimension.
begin;
select plan(16);
set local timezone = 'UTC';

-- Seeded kinds.
select results_eq(
  $$select kind, unit, audio, featured_dimension from tally.kinds order by kind$$,
  $$values ('export', 'files', false, null::text), ('llm', 'tokens', false, 'model'), ('ocr', 'pages', false, 'model'),
           ('transcription', 'seconds', true, 'model'), ('tts', 'characters', true, 'voice')$$,
  'the products'' kinds come declared with their units');

-- Declaring: bad input names the field.
select is(tests.error_of($$select tally.declare_kind('x', 'Pages!')$$) like 'PT011:%unit%', true, 'a unit must be a lower-case word');
select is(tests.error_of($$select tally.declare_kind('x', 'pages', featured_dimension => 'nope')$$) like 'PT011:%nope%', true,
          'a featured dimension must be declared');
select is(tests.error_of($$set local role tally_reader; select tally.declare_kind('x', 'pages')$$) like '42501:%', true,
          'a reader cannot declare kinds');
reset role;

-- One user of text to speech only: the total is in characters.
select tests.tts('a1', 'one', '2026-11-20 10:00+00', 300, duration_ms => 60000);
select tally.record_usage('a2', 'one', 'paywall.viewed', 0, '2026-11-20 11:00+00');
select is((select format('%s %s %s', quantity, unit, duration_ms) from tally.summary_card('one', 5, '2026-11-21 12:00+00')
            where section = 'total'), '300 characters 60000',
          'one unit: the total adds it (a product event with no quantity mixes nothing)');
select is((select string_agg(format('%s %s', quantity, unit), ',' order by bucket_start)
             from tally.usage_history('one', '2d', 'day', at => '2026-11-21 12:00+00')), '300 characters,0 characters',
          'history of one unit says the unit');

-- A user of text to speech and OCR: characters and pages never add up.
select tests.tts('b1', 'two', '2026-11-20 10:00+00', 300, duration_ms => 60000);
select tally.record_usage('b2', 'two', 'ocr', 12, '2026-11-20 10:30+00', duration_ms => 9000,
                          attributes => '{"model": "tesseract"}');
select is((select format('%s|%s|%s', coalesce(quantity::text, 'none'), coalesce(unit, 'none'), duration_ms)
             from tally.summary_card('two', 5, '2026-11-21 12:00+00') where section = 'total'), 'none|none|60000',
          'two units: no total quantity, and listening time is the audio kind''s only (not OCR''s processing time)');
select is((select string_agg(format('%s %s %s', value, quantity, unit), ', ' order by value)
             from tally.summary_card('two', 5, '2026-11-21 12:00+00') where section = 'kind'),
          'ocr 12 pages, tts 300 characters', 'per kind, each in its unit');
select is((select count(*)::int from tally.usage_history('two', '2d', 'day', at => '2026-11-21 12:00+00') where quantity is not null),
          0, 'unstacked history over two units has no quantity in any bucket');
select is((select string_agg(format('%s %s %s', value, quantity, unit), ', ' order by value)
             from tally.usage_history('two', '1d', 'day', 'kind', at => '2026-11-20 12:00+00')),
          'ocr 12 pages, tts 300 characters', 'history stacked by kind keeps each quantity in its unit');
select is((select count(*)::int from tally.weekday_distribution('two', at => '2026-11-21 12:00+00') where quantity is not null)
          + (select count(*)::int from tally.monthly_summaries('two', 2, '2026-11-21 12:00+00') where quantity is not null)
          + (select count(*)::int from tally.hour_of_week_heatmap('two') where quantity is not null)
          + (select count(*)::int from tally.calendar_heatmap('two', 2026, '2026-11-21 12:00+00') where quantity is not null),
          0, 'weekday, monthly, hour-of-week and calendar answers add no quantities of two units');
select is(tests.error_of($$select * from tally.usage_anomalies('two', '2026-11-20', '2026-11-21', 'quantity', null, 3.5, '2026-11-21 12:00+00')$$)
            like 'PT011:%units%', true, 'anomalies of the quantity of all kinds of two units are refused');

-- The card features each kind's dimension: voices for tts, models for OCR.
select is((select string_agg(section || ' ' || value, ', ' order by section, value)
             from tally.summary_card('two', 5, '2026-11-21 12:00+00') where section not in ('total', 'kind', 'period')),
          'model kokoro, model tesseract, voice af_alloy', 'the card ranks the featured dimension of each kind used');

-- A kind nobody declared counts in a unit of its own.
select tests.tts('c1', 'three', '2026-11-20 10:00+00', 300);
select tally.record_usage('c2', 'three', 'minutes_of_fun', 5, '2026-11-20 10:30+00');
select is((select quantity from tally.summary_card('three', 5, '2026-11-21 12:00+00') where section = 'total'), null,
          'an undeclared kind adds to no other kind');

-- Declaring applies at once, with no rebuild: minutes_of_fun now counts in characters too.
select tally.declare_kind('minutes_of_fun', 'characters', 'Fun');
select is((select format('%s %s', quantity, unit) from tally.summary_card('three', 5, '2026-11-21 12:00+00') where section = 'total'),
          '305 characters', 'a kind declared in the same unit adds up at once');

-- A product features its own dimension for a kind of its own.
select tally.declare_dimension('template', '{template}');
select tally.declare_kind('export', 'files', 'Exports', featured_dimension => 'template');
select tally.record_usage('d1', 'four', 'export', 1, '2026-11-20 10:00+00', attributes => '{"template": "invoice"}');
select is((select string_agg(section || ' ' || value || ' ' || quantity || ' ' || unit, ', ')
             from tally.summary_card('four', 5, '2026-11-21 12:00+00') where section = 'template'),
          'template invoice 1 files', 'a declared featured dimension is a section of the card, in the kind''s unit');

select * from finish();
rollback;
