-- Capture agents (Kheish's capture-agent plane): provisioned agents, the upload-token leases
-- they hold on the sources they own, and the provisioning batches already applied.
CREATE TABLE capture_agents (
  machine_id TEXT PRIMARY KEY,
  batch_id TEXT NOT NULL,
  provision_fingerprint_sha256 TEXT,
  os_profile TEXT NOT NULL,
  status TEXT NOT NULL,
  source_ids TEXT NOT NULL,
  heartbeat_token_hash BLOB NOT NULL,
  heartbeat_token_version INTEGER NOT NULL,
  heartbeat_interval_ms INTEGER NOT NULL,
  heartbeat_grace_ms INTEGER NOT NULL,
  heartbeat_deadline_ms INTEGER NOT NULL,
  heartbeat_state TEXT NOT NULL,
  last_heartbeat_at_ms INTEGER,
  last_heartbeat_agent_version TEXT,
  last_heartbeat_observed_source_ids TEXT NOT NULL DEFAULT '[]',
  last_heartbeat_unobserved_source_ids TEXT NOT NULL DEFAULT '[]',
  heartbeat_missing_since_ms INTEGER,
  token_expires_at_ms INTEGER,
  revoked_at_ms INTEGER,
  revoked_reason TEXT,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;

-- What the heartbeat check scans: live agents by deadline.
CREATE INDEX capture_agents_deadline ON capture_agents(heartbeat_deadline_ms)
  WHERE status = 'active' AND heartbeat_state IN ('pending', 'healthy');

CREATE TABLE capture_leases (
  -- Issue order (history is listed oldest first).
  seq INTEGER PRIMARY KEY,
  lease_id TEXT NOT NULL UNIQUE,
  machine_id TEXT NOT NULL REFERENCES capture_agents(machine_id) ON DELETE CASCADE,
  source_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  token_hash BLOB NOT NULL,
  upload_token_version INTEGER NOT NULL,
  issued_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER,
  superseded_by TEXT
) STRICT;

CREATE INDEX capture_leases_source ON capture_leases(source_id);
CREATE INDEX capture_leases_agent ON capture_leases(machine_id, seq);

CREATE TABLE capture_provision_batches (
  batch_id TEXT PRIMARY KEY,
  fingerprint_sha256 TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL
) STRICT;

-- Observation groups: the newest observations of one `metadata.capture_group_id`, across sources.
CREATE INDEX observations_capture_group
  ON observations(json_extract(metadata, '$.capture_group_id'), captured_at_ms, observation_id)
  WHERE metadata IS NOT NULL;
