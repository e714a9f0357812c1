-- Signed uploads: a URL minted for one source and media type; once PUT, the bytes wait in
-- `uploads/<upload_id>` under the data dir until an observation uses them (single use) or the
-- upload expires. Rows of used or expired uploads stay for a day as tombstones, so a late
-- request gets a precise answer instead of "not found".
CREATE TABLE uploads (
  upload_id TEXT PRIMARY KEY,
  source_id TEXT NOT NULL REFERENCES sources(source_id) ON DELETE CASCADE,
  media_type TEXT NOT NULL,
  file_name TEXT NOT NULL,
  -- pending (no bytes yet) | received (bytes on disk) | used | expired
  state TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER,
  sha256 TEXT,
  byte_length INTEGER,
  observation_id TEXT
) STRICT;

CREATE INDEX uploads_expiry ON uploads(state, expires_at_ms);

-- Webhook endpoints (from the config file), by URL: how far into the outbox deliveries have
-- been scheduled, and whether a 410 answer disabled the endpoint.
CREATE TABLE webhook_endpoints (
  url TEXT PRIMARY KEY,
  cursor_seq INTEGER NOT NULL,
  disabled_at_ms INTEGER,
  disabled_reason TEXT,
  created_at_ms INTEGER NOT NULL
) STRICT;

-- One row per (endpoint, event): retried with backoff until a 2xx (delivered) or the retry
-- schedule runs out (failed). Survives restarts; a delivered row is never sent again.
CREATE TABLE webhook_deliveries (
  url TEXT NOT NULL REFERENCES webhook_endpoints(url) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  -- pending | delivered | failed
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (url, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at_ms);
