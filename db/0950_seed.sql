-- ============================================================================
-- Data every installation starts with: the default dimensions and partitions.
-- ============================================================================

insert into tally.dimensions (name, keys, description) values
  ('kind',  '{kind}',  'Usage type (the kind column).'),
  ('voice', '{voice}', 'TTS voice (attributes.voice).'),
  ('model', '{model}', 'Model (attributes.model).')
on conflict do nothing;

select tally.ensure_partitions();
