-- ============================================================================
-- Roles (cluster-wide, NOLOGIN groups): grant them to your login roles.
-- Created only when missing, so installing into a second database, or again
-- after a downgrade, never fails. Downgrades leave them (other databases of
-- the cluster may use them).
-- ============================================================================

do $$
declare
  r text;
begin
  foreach r in array array['tally_owner', 'tally_writer', 'tally_reader', 'tally_analyst'] loop
    if not exists (select from pg_roles where rolname = r) then
      execute format('create role %I nologin', r);
    end if;
  end loop;
end
$$;

comment on role tally_writer is 'pgtally: producers; may append usage (INSERT/COPY, record functions) and nothing else.';
comment on role tally_reader is 'pgtally: application backends; read one user''s data, the user named by the tally.user_id setting.';
comment on role tally_analyst is 'pgtally: admins and analysts; platform analytics (views, admin functions), no per-user raw events.';
comment on role tally_owner is 'pgtally: owns the schema; runs migrations, merges, retention.';
