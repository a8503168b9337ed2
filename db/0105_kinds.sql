-- ============================================================================
-- The kinds registry: the unit each kind's quantity counts in, its display name,
-- whether its duration is audio, and the dimension its summary card features.
-- Written by tally.declare_kind; read by every read that adds quantities, so no
-- figure ever adds quantities of different units.
-- ============================================================================

create table tally.kinds (
  kind               text        primary key
                                 constraint kind_is_short check (kind <> '' and length(kind) <= 64),
  unit               text        not null
                                 constraint unit_is_a_word check (unit ~ '^[a-z][a-z0-9_ ]{0,31}$'),
  display_name       text        not null
                                 constraint display_name_is_short check (display_name <> '' and length(display_name) <= 80),
  audio              boolean     not null default false,
  featured_dimension text        references tally.dimensions (name) on delete set null,
  declared_at        timestamptz not null default now()
);

comment on table tally.kinds is
  'Declared kinds of usage (a small shared table): the unit of the quantity, a display name, whether duration_ms is audio, and the dimension the summary card features. A kind that is not declared counts in a unit of its own, so it is never added to another kind''s quantity. Write through tally.declare_kind.';
comment on column tally.kinds.unit is 'Unit of the quantity of this kind (characters, pages, files, tokens, seconds, events, ...); quantities are added only within one unit.';
comment on column tally.kinds.audio is 'Whether duration_ms of this kind is audio (listened or transcribed): only audio durations count as listening time; other durations are processing time.';
comment on column tally.kinds.featured_dimension is 'The dimension the summary card ranks for this kind (voice for text to speech, model for LLM calls); NULL for none.';
