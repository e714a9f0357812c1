import { stmt, type Db } from '../db/open.js';

// The session input journal (`session_inputs`): written by materialization as each run is
// created, read by derivations (a `session_input` subject), its text held by assets. Below both
// domains, so neither imports the other to reach it.

/** One entry of a session's input journal. */
export interface SessionInputRow {
  session_id: string;
  offset: number;
  run_id: string;
  /** The composed input (JSON). */
  content: string;
  /** The input rendered as text/plain; null until written (just after the run commits). */
  text_asset_id: string | null;
  created_at_ms: number;
}

/**
 * Appends an input to a session's journal at the next offset (0 for a new session), inside the
 * caller's transaction, and returns that offset.
 */
export function appendSessionInput(db: Db, entry: Omit<SessionInputRow, 'offset' | 'text_asset_id'>): number {
  const offset = stmt(db, `SELECT COALESCE(MAX(offset) + 1, 0) FROM session_inputs WHERE session_id = ?`)
    .pluck()
    .get(entry.session_id) as number;
  stmt(
    db,
    `INSERT INTO session_inputs (session_id, offset, run_id, content, created_at_ms) VALUES (@session_id, @offset, @run_id, @content, @created_at_ms)`,
  ).run({ ...entry, offset });
  return offset;
}

/** Records the text asset of a journal entry, inside the caller's transaction; false when the entry was erased meanwhile. */
export function setSessionInputText(db: Db, sessionId: string, offset: number, textAssetId: string): boolean {
  return (
    stmt(db, `UPDATE session_inputs SET text_asset_id = ? WHERE session_id = ? AND offset = ? AND content != 'null'`).run(
      textAssetId,
      sessionId,
      offset,
    ).changes > 0
  );
}

/** Journal entries whose text is not written yet (a crash right after their run committed), up to `limit`. */
export function listSessionInputsWithoutText(db: Db, limit: number): SessionInputRow[] {
  // An erased entry (content 'null', see eraseRun) has no text to write.
  return stmt(db, `SELECT * FROM session_inputs WHERE text_asset_id IS NULL AND content != 'null' LIMIT ?`).all(limit) as SessionInputRow[];
}

/** Reads one journal entry; undefined if the session has no input at that offset. */
export function getSessionInput(db: Db, sessionId: string, offset: number): SessionInputRow | undefined {
  return stmt(db, `SELECT * FROM session_inputs WHERE session_id = ? AND offset = ?`).get(sessionId, offset) as SessionInputRow | undefined;
}
