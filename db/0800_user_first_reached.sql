-- Funnel steps: when each user first reached each kind (first succeeded original event), kept by tally._apply_admin.
-- Read by tally.admin_funnel only (analysts never read it directly: it is per-user data).
create table tally.user_first_reached (
  user_id  text        not null,
  kind     text        not null,
  first_at timestamptz not null,
  primary key (user_id, kind)
);

comment on table tally.user_first_reached is
  'First time each user reached each kind (its first succeeded original event), maintained by the merge (tally._apply_admin); the funnel source, so funnels never scan the raw log (internal; read through tally.admin_funnel).';

-- Funnel entry: users who first reached step 1 in a timeframe; later steps join on the primary key.
create index user_first_reached_kind on tally.user_first_reached (kind, first_at, user_id);
