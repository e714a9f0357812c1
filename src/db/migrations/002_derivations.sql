-- Derivations: deterministic, cached secondary artifacts (canonical text, visual previews) of an
-- asset or an observation. One row per cache key; the row is also the durable job of the
-- background queue while its status is pending or processing.
CREATE TABLE derivations (
  derivation_id TEXT PRIMARY KEY,
  -- sha256 over profile, profile version, subject, subject content and backend identity.
  cache_key TEXT NOT NULL,
  profile TEXT NOT NULL,
  profile_version INTEGER NOT NULL,
  -- The subject as requested (JSON), and what it resolved to.
  subject TEXT NOT NULL,
  subject_type TEXT NOT NULL,
  subject_observation_id TEXT,
  subject_asset_id TEXT NOT NULL,
  subject_content_hash TEXT NOT NULL,
  backend_identity TEXT,
  status TEXT NOT NULL,
  error TEXT,
  backend TEXT,
  result_asset_id TEXT,
  reused_subject_asset INTEGER NOT NULL DEFAULT 0,
  -- 1 when a source's auto_derive asked for it: it then moves the observation's processing_status.
  auto_derive INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX derivations_cache_key ON derivations(cache_key);
CREATE INDEX derivations_unsettled ON derivations(derivation_id) WHERE status IN ('pending', 'processing');
CREATE INDEX derivations_observation ON derivations(subject_observation_id) WHERE subject_observation_id IS NOT NULL;
CREATE INDEX derivations_subject_asset ON derivations(subject_asset_id);
CREATE INDEX derivations_result_asset ON derivations(result_asset_id) WHERE result_asset_id IS NOT NULL;
