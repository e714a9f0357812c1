-- PII redaction per source: a JSON list of detectors, or NULL for the config's privacy.redact.
ALTER TABLE sources ADD COLUMN redact TEXT;

-- Full-text search over canonical text. search_documents holds each indexed observation's text
-- once (the FTS table reads it as its external content, for snippets and exact deletes); the
-- FTS5 table's secure-delete option removes a deleted document's terms from the index itself,
-- so no shadow table keeps them.
CREATE TABLE search_documents (
  doc_id INTEGER PRIMARY KEY,
  observation_id TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL
) STRICT;

CREATE VIRTUAL TABLE search_index USING fts5(
  body,
  content = 'search_documents',
  content_rowid = 'doc_id',
  tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search_index(search_index, rank) VALUES ('secure-delete', 1);

CREATE TRIGGER search_documents_insert AFTER INSERT ON search_documents BEGIN
  INSERT INTO search_index(rowid, body) VALUES (new.doc_id, new.body);
END;
CREATE TRIGGER search_documents_delete AFTER DELETE ON search_documents BEGIN
  INSERT INTO search_index(search_index, rowid, body) VALUES ('delete', old.doc_id, old.body);
END;
CREATE TRIGGER search_documents_update AFTER UPDATE OF body ON search_documents BEGIN
  INSERT INTO search_index(search_index, rowid, body) VALUES ('delete', old.doc_id, old.body);
  INSERT INTO search_index(rowid, body) VALUES (new.doc_id, new.body);
END;

-- An observation's text leaves the index in the statement that deletes or purges it, whichever
-- path does it (DELETE, source deletion, retention, quota eviction, history retention).
CREATE TRIGGER observations_unindex_deleted AFTER DELETE ON observations BEGIN
  DELETE FROM search_documents WHERE observation_id = old.observation_id;
END;
CREATE TRIGGER observations_unindex_purged AFTER UPDATE OF retention_state ON observations
WHEN new.retention_state <> 'active' BEGIN
  DELETE FROM search_documents WHERE observation_id = new.observation_id;
END;

-- Text stored before this migration is indexed in the background (the search.backfill job), in
-- observation id order after this cursor; the row goes when the walk is done. A new store has
-- nothing to walk.
CREATE TABLE search_backfill (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  after_observation_id TEXT NOT NULL
) STRICT;
INSERT INTO search_backfill (id, after_observation_id) SELECT 1, '' WHERE EXISTS (SELECT 1 FROM observations);
