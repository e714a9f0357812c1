import { rmSync } from 'node:fs';
import { recordAudit } from '../audit/repo.js';
import { commitThenErase, type Deps } from '../deps.js';
import { releaseWithDerivations } from '../assets/repo.js';
import { AppError, notFound } from '../errors.js';
import { keysetListing } from '../db/keyset.js';
import type { Listing } from '../pagination.js';
import { getSourceRow, saveSourceRow, toSourceView, type SourceRow } from './repo.js';
import { SOURCE_DEFAULTS, type SourcePatch, type SourceUpsert, type SourceView, type rotateTokenSchema } from './schemas.js';
import { encodeSettings, settingsOf, stripUndefined, withRateLimit } from './settings.js';
import { fingerprintOf, generateToken, hashToken, tokenMatches } from './tokens.js';
import { checkLeaseToken, getAgentRow, ownerOfSource } from '../capture/repo.js';
import { uploadPathOf } from '../uploads/paths.js';
import type { AuditEvent } from '../audit/repo.js';
import type { z } from 'zod';

/** A source view plus, only when the daemon generated it, the one-time token. */
export interface SourceWithToken {
  source: SourceView;
  upload_token?: string;
}

/**
 * Scrubs what other tables keep of observations being deleted (events, signed uploads, runs),
 * inside the delete's transaction; returns the asset ids held for them. Retention's
 * `eraseMentions`, injected by `openStore`: it reaches up to runs, which sources sit below.
 */
export type EraseMentions = (observationIds: string[]) => string[];

/** Source management: create/update, read, list, tokens, delete. No HTTP here. */
export class SourceService {
  constructor(
    private deps: Deps,
    private eraseMentions: EraseMentions,
  ) {}

  /** Loads a source row; not_found if missing. */
  require(sourceId: string): SourceRow {
    const row = getSourceRow(this.deps.db, sourceId);
    if (!row) throw notFound(`observation source "${sourceId}"`);
    return row;
  }

  /** Returns a source view; not_found if missing. */
  get(sourceId: string): SourceView {
    return toSourceView(this.require(sourceId));
  }

  /**
   * Creates a source, or updates it when `source_id` exists (omitted fields keep their values);
   * conflict if the kind would change. A token is generated when none is given on create.
   */
  upsert(
    input: SourceUpsert,
    opts: { auditEvent?: AuditEvent; captureProvisioning?: boolean } = {},
  ): SourceWithToken & { created: boolean } {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const t = now();
      const existing = input.source_id ? getSourceRow(db, input.source_id) : undefined;
      if (input.source_id && !opts.captureProvisioning) this.assertNotCaptureOwned(input.source_id);
      if (existing && existing.kind !== input.kind) {
        throw new AppError('conflict', `source "${existing.source_id}" is a ${existing.kind}; its kind cannot change`);
      }
      const { upload_token, source_id, kind, ...flat } = input;
      const base = existing ? settingsOf(existing) : SOURCE_DEFAULTS;
      const settings = withRateLimit(flat, base.ingest_rate_limit);
      let generated: string | undefined;
      let tokenHash = existing?.token_hash ?? null;
      let version = existing?.token_version ?? 0;
      // Re-sending the current token (the Kheish CLI always sends one) is not a rotation.
      const tokenChanged = !existing || (upload_token !== undefined && !tokenMatches(upload_token, existing.token_hash));
      if (tokenChanged) {
        if (upload_token === undefined) generated = generateToken();
        tokenHash = hashToken(upload_token ?? generated!);
        version += 1;
      }
      const merged = { ...base, ...stripUndefined(settings) };
      const row = {
        source_id: source_id ?? newId('src'),
        kind,
        ...encodeSettings(merged),
        token_hash: tokenHash,
        token_version: version,
        prev_token_hash: tokenChanged ? null : (existing?.prev_token_hash ?? null),
        prev_token_expires_at_ms: tokenChanged ? null : (existing?.prev_token_expires_at_ms ?? null),
        created_at_ms: existing?.created_at_ms ?? t,
        updated_at_ms: t,
        last_token_rotated_at_ms: existing && tokenChanged ? t : (existing?.last_token_rotated_at_ms ?? null),
        // A new token ends a revocation, as in Kheish.
        upload_token_revoked_at_ms: tokenChanged ? null : (existing?.upload_token_revoked_at_ms ?? null),
      };
      saveSourceRow(db, row);
      this.deps.events.append('source.updated', row.source_id, {
        source_id: row.source_id,
        change: existing ? 'updated' : 'created',
        status: row.status,
      });
      recordAudit(db, newId, t, opts.auditEvent ?? (!existing ? 'source_created' : tokenChanged ? 'source_rotated' : 'source_updated'), {
        source_id: row.source_id,
        detail: { fields: Object.keys(stripUndefined(settings)), upload_token_version: version, token_changed: tokenChanged },
      });
      return { source: this.get(row.source_id), upload_token: generated, created: !existing };
    })();
  }

  /** Applies a partial update; not_found if missing, conflict on a kind change. */
  patch(sourceId: string, patch: SourcePatch): SourceView {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const existing = this.require(sourceId);
      const { kind, upload_token: _token, ...flat } = patch;
      const base = settingsOf(existing);
      const settings = withRateLimit(flat, base.ingest_rate_limit);
      if (kind !== undefined && kind !== existing.kind) {
        throw new AppError('conflict', `source "${sourceId}" is a ${existing.kind}; its kind cannot change`);
      }
      const merged = { ...base, ...stripUndefined(settings) };
      const t = now();
      saveSourceRow(db, { ...existing, ...encodeSettings(merged), updated_at_ms: t });
      this.deps.events.append('source.updated', sourceId, { source_id: sourceId, change: 'updated', status: merged.status });
      recordAudit(db, newId, t, 'source_updated', { source_id: sourceId, detail: { fields: Object.keys(stripUndefined(settings)) } });
      return this.get(sourceId);
    })();
  }

  /**
   * Replaces the upload token; the previous one keeps working for `grace_period_ms`.
   * not_found if missing. The new token is returned only when generated here.
   */
  rotateToken(sourceId: string, input: z.output<typeof rotateTokenSchema>): SourceWithToken {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const existing = this.require(sourceId);
      this.assertNotCaptureOwned(sourceId);
      const t = now();
      const generated = input.upload_token === undefined ? generateToken() : undefined;
      const keepPrev = input.grace_period_ms > 0 && existing.token_hash !== null;
      saveSourceRow(db, {
        ...existing,
        token_hash: hashToken(input.upload_token ?? generated!),
        token_version: existing.token_version + 1,
        prev_token_hash: keepPrev ? existing.token_hash : null,
        prev_token_expires_at_ms: keepPrev ? t + input.grace_period_ms : null,
        updated_at_ms: t,
        last_token_rotated_at_ms: t,
        upload_token_revoked_at_ms: null,
      });
      this.deps.events.append('source.updated', sourceId, { source_id: sourceId, change: 'token_rotated', status: existing.status });
      recordAudit(db, newId, t, 'source_token_rotated', {
        source_id: sourceId,
        detail: { upload_token_version: existing.token_version + 1, grace_period_ms: input.grace_period_ms },
      });
      return { source: this.get(sourceId), upload_token: generated };
    })();
  }

  /**
   * Revokes every upload token of a source at once (`upload_token_revoked_at_ms`); the optional
   * reason goes to the audit trail with control characters removed. not_found if missing.
   */
  revokeToken(sourceId: string, reason?: string | null): SourceView {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const existing = this.require(sourceId);
      this.assertNotCaptureOwned(sourceId);
      const t = now();
      saveSourceRow(db, {
        ...existing,
        token_hash: null,
        prev_token_hash: null,
        prev_token_expires_at_ms: null,
        updated_at_ms: t,
        upload_token_revoked_at_ms: t,
      });
      this.deps.events.append('source.updated', sourceId, { source_id: sourceId, change: 'token_revoked', status: existing.status });
      const clean = reason?.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
      recordAudit(db, newId, t, 'source_token_revoked', {
        source_id: sourceId,
        detail: { upload_token_version: existing.token_version, ...(clean ? { reason: clean } : {}) },
      });
      return this.get(sourceId);
    })();
  }

  /** Deletes a source, its observations, and every blob nothing else references; not_found if missing. */
  delete(sourceId: string): void {
    const { db, now, newId } = this.deps;
    let uploadFiles: string[] = [];
    commitThenErase(this.deps, () => {
      const existing = this.require(sourceId);
      const owner = ownerOfSource(db, sourceId);
      if (owner && getAgentRow(db, owner)?.status === 'active') {
        throw new AppError(
          'conflict',
          `capture-owned observation source ${sourceId} is managed by capture agent ${owner}; revoke the agent first`,
        );
      }
      const assets = db
        .prepare(
          `SELECT asset_id AS id FROM observations WHERE source_id = ? UNION SELECT canonical_text_asset_id FROM observations WHERE source_id = ? AND canonical_text_asset_id IS NOT NULL`,
        )
        .all(sourceId, sourceId) as Array<{ id: string }>;
      const count = db.prepare(`SELECT COUNT(*) AS n FROM observations WHERE source_id = ?`).get(sourceId) as { n: number };
      const observationIds = db.prepare(`SELECT observation_id FROM observations WHERE source_id = ?`).pluck().all(sourceId) as string[];
      // Signed uploads PUT but not used yet: their rows go with the source, their bytes after commit.
      uploadFiles = db
        .prepare(`SELECT upload_id FROM uploads WHERE source_id = ? AND state = 'received'`)
        .pluck()
        .all(sourceId) as string[];
      const runAssets = this.eraseMentions(observationIds);
      db.prepare(`DELETE FROM observations WHERE source_id = ?`).run(sourceId);
      db.prepare(`DELETE FROM sources WHERE source_id = ?`).run(sourceId);
      // A revoked agent's leases on it go with it, so a new source of that id is an ordinary one.
      if (owner) db.prepare(`DELETE FROM capture_leases WHERE source_id = ?`).run(sourceId);
      const freed = releaseWithDerivations(db, observationIds, [...assets.map((a) => a.id), ...runAssets]);
      this.deps.events.append('source.updated', sourceId, { source_id: sourceId, change: 'deleted', status: 'deleted' });
      recordAudit(db, newId, now(), 'source_deleted', {
        source_id: sourceId,
        detail: { observations_deleted: count.n, blobs_erased: freed.length, active_byte_length: existing.active_byte_length },
      });
      return { result: undefined, freed, erased: true };
    });
    for (const id of uploadFiles) rmSync(uploadPathOf(this.deps.blobs.dataDir, id), { force: true });
  }

  /** Lists sources by id with an optional substring filter over id and display name (the list convention's keyset pages). */
  list(q: { query?: string }): Listing<SourceView> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.query) {
      where.push(`(instr(lower(source_id), lower(?)) > 0 OR instr(lower(display_name), lower(?)) > 0)`);
      args.push(q.query, q.query);
    }
    return keysetListing<SourceRow, SourceView>(this.deps.db, {
      table: 'sources',
      key: 'source_id',
      scope: 'sources',
      order: 'asc',
      where,
      args,
      view: toSourceView,
    });
  }

  /**
   * Checks an upload token for a source. An unknown source and a wrong token are the same
   * `unauthorized`; a valid token on a paused or disabled source is `forbidden`.
   */
  authenticateUpload(sourceId: string, token: string | undefined): SourceRow {
    const row = getSourceRow(this.deps.db, sourceId);
    const presented = token ?? '';
    // A capture-owned source: only the owning agent's live lease tokens count (Kheish's
    // `authorize_capture_agent_lease`); a revoked, superseded or expired lease is unauthorized.
    const lease = row ? checkLeaseToken(this.deps.db, sourceId, presented, this.deps.now()) : undefined;
    if (row && lease !== undefined) {
      if (lease !== null) throw new AppError('unauthorized', 'missing or invalid upload token for this source', { reason: lease });
      if (row.status !== 'active')
        throw new AppError('forbidden', `source is ${row.status}; uploads are not accepted`, { reason: 'source_not_active' });
      return row;
    }
    const current = tokenMatches(presented, row?.token_hash);
    const previous = tokenMatches(presented, row?.prev_token_hash) && (row?.prev_token_expires_at_ms ?? 0) > this.deps.now();
    if (!row || !token || !(current || previous)) {
      const reason = !token ? 'missing_or_invalid_token' : row?.upload_token_revoked_at_ms != null ? 'revoked_token' : 'invalid_token';
      throw new AppError('unauthorized', 'missing or invalid upload token for this source', { reason });
    }
    if (row.status !== 'active') throw new AppError('forbidden', `source is ${row.status}; uploads are not accepted`);
    return row;
  }

  /** Refuses changing what a capture agent manages (its tokens, its settings); conflict naming the agent. */
  assertNotCaptureOwned(sourceId: string): void {
    const owner = ownerOfSource(this.deps.db, sourceId);
    if (owner) throw new AppError('conflict', `capture-owned observation source ${sourceId} is managed by capture agent ${owner}`);
  }

  /** A short tag identifying which token was used, for the audit trail. */
  static tokenTag(token: string): string {
    return fingerprintOf(token);
  }
}
