-- ============================================================================
-- Data every installation starts with: the default dimensions and partitions.
-- ============================================================================

insert into tally.dimensions (name, keys, description) values
  ('kind',  '{kind}',  'Usage type (the kind column).'),
  ('voice', '{voice}', 'TTS voice (attributes.voice).'),
  ('model', '{model}', 'Model (attributes.model).'),
  ('plan',  '{plan}',  'Plan in force when the event occurred (the plan column).')
on conflict do nothing;

-- The kinds of the products pgtally was built for; a product declares its own with tally.declare_kind.
insert into tally.kinds (kind, unit, display_name, audio, featured_dimension) values
  ('tts',           'characters', 'Text to speech', true,  'voice'),
  ('transcription', 'seconds',    'Transcription',  true,  'model'),
  ('ocr',           'pages',      'OCR',            false, 'model'),
  ('export',        'files',      'Exports',        false, null),
  ('llm',           'tokens',     'LLM calls',      false, 'model')
on conflict do nothing;

-- The admin dashboard's default funnel (the paywall), precomputed by the refresh; a product declares its own
-- with tally.declare_funnel (and drops this one with tally.drop_funnel).
insert into tally.dashboard_funnels (steps) values
  ('{paywall.viewed,paywall.clicked,checkout.started,checkout.completed}')
on conflict do nothing;

-- The platform's daily totals are aggregated over every day at the first refresh.
insert into tally.admin_daily_stale (day, version) values ('-infinity', pg_current_xact_id())
on conflict (day, version) do nothing;

select tally.ensure_partitions();
