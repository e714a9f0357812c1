-- The event outbox: every change worth telling is written here in the same transaction as the
-- change itself; SSE and webhooks read it after commit. `seq` orders events and resumes streams.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source_id TEXT,
  at_ms INTEGER NOT NULL,
  data TEXT NOT NULL
) STRICT;

CREATE INDEX events_at ON events(at_ms);
