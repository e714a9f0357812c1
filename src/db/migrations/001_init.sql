-- Sources, their tokens, content-addressed assets, observations and the audit trail.
CREATE TABLE sources (
  source_id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  kind TEXT NOT NULL,
  sensitivity TEXT NOT NULL,
  retention_seconds INTEGER NOT NULL,
  max_active_observations INTEGER NOT NULL,
  max_active_bytes INTEGER NOT NULL,
  allow_materialization INTEGER NOT NULL,
  allow_output_delivery INTEGER NOT NULL,
  status TEXT NOT NULL,
  quota_policy TEXT NOT NULL,
  purge_raw_on_retention INTEGER NOT NULL,
  auto_derive TEXT NOT NULL,
  ingest_rate_limit TEXT,
  token_hash BLOB,
  token_version INTEGER NOT NULL,
  prev_token_hash BLOB,
  prev_token_expires_at_ms INTEGER,
  active_observation_count INTEGER NOT NULL DEFAULT 0,
  active_byte_length INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE assets (
  asset_id TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL,
  media_type TEXT NOT NULL,
  byte_length INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE observations (
  observation_id TEXT PRIMARY KEY,
  source_id TEXT NOT NULL REFERENCES sources(source_id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  sensitivity TEXT NOT NULL,
  retention_state TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  canonical_text_asset_id TEXT,
  file_name TEXT NOT NULL,
  media_type TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  byte_length INTEGER NOT NULL,
  captured_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  purged_at_ms INTEGER,
  blobs_held INTEGER NOT NULL,
  stream_id TEXT,
  seq_no INTEGER,
  idempotency_key TEXT NOT NULL,
  request_fingerprint TEXT NOT NULL,
  metadata TEXT,
  latitude REAL,
  longitude REAL,
  processing_status TEXT
) STRICT;

CREATE UNIQUE INDEX observations_idempotency ON observations(source_id, idempotency_key);
CREATE INDEX observations_captured ON observations(captured_at_ms, observation_id);
CREATE INDEX observations_source_captured ON observations(source_id, captured_at_ms, observation_id);
CREATE INDEX observations_stream_captured ON observations(source_id, stream_id, captured_at_ms, observation_id)
  WHERE stream_id IS NOT NULL;
CREATE INDEX observations_expiry ON observations(expires_at_ms) WHERE retention_state = 'active';
CREATE INDEX observations_source_received ON observations(source_id, received_at_ms, observation_id)
  WHERE retention_state = 'active';
CREATE INDEX observations_asset ON observations(asset_id) WHERE blobs_held = 1;
CREATE INDEX observations_text_asset ON observations(canonical_text_asset_id)
  WHERE blobs_held = 1 AND canonical_text_asset_id IS NOT NULL;

CREATE TABLE audit_events (
  audit_id TEXT PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  event TEXT NOT NULL,
  source_id TEXT,
  observation_id TEXT,
  detail TEXT NOT NULL
) STRICT;

CREATE INDEX audit_events_source ON audit_events(source_id, audit_id);
CREATE INDEX audit_events_event ON audit_events(event, audit_id);
