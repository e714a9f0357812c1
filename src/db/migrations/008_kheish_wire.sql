-- Kheish wire compatibility: the source view's token and activity timestamps, Kheish's two
-- sensitivities, and Kheish's audit event names.
ALTER TABLE sources ADD COLUMN last_authenticated_at_ms INTEGER;
ALTER TABLE sources ADD COLUMN last_token_rotated_at_ms INTEGER;
ALTER TABLE sources ADD COLUMN upload_token_revoked_at_ms INTEGER;
ALTER TABLE sources ADD COLUMN last_observed_at_ms INTEGER;

UPDATE sources SET sensitivity = 'standard' WHERE sensitivity IN ('public', 'internal');
UPDATE sources SET sensitivity = 'sensitive' WHERE sensitivity = 'restricted';
UPDATE observations SET sensitivity = 'standard' WHERE sensitivity IN ('public', 'internal');
UPDATE observations SET sensitivity = 'sensitive' WHERE sensitivity = 'restricted';
UPDATE runs SET sensitivity = 'standard' WHERE sensitivity IN ('public', 'internal');
UPDATE runs SET sensitivity = 'sensitive' WHERE sensitivity = 'restricted';

UPDATE audit_events SET event = 'source_token_rotated' WHERE event = 'token_rotated';
UPDATE audit_events SET event = 'source_token_revoked' WHERE event = 'token_revoked';
UPDATE audit_events SET event = 'upload_succeeded' WHERE event = 'observation_created';
UPDATE audit_events SET event = 'upload_replayed' WHERE event = 'observation_replayed';
UPDATE audit_events SET event = 'upload_rate_limited' WHERE event = 'rate_limited';
UPDATE audit_events SET event = 'retention_purged_assets' WHERE event = 'retention_purged';

-- Kheish's RunView.request.actor_id: who the materialization is about (first id, source, source:stream).
ALTER TABLE runs ADD COLUMN actor_id TEXT;
