import { toSourceView, type SourceRow } from './repo.js';
import { KHEISH_RATE_LIMIT, type SourceSettings } from './schemas.js';

/** A source row's settings as the API speaks them (the view's fields; `allow_external_processing` as stored). */
export function settingsOf(r: SourceRow): SourceSettings {
  const v = toSourceView(r);
  return {
    display_name: v.display_name,
    sensitivity: v.sensitivity,
    retention_seconds: v.retention_seconds,
    max_active_observations: v.max_active_observations,
    max_active_bytes: v.max_active_bytes,
    allow_materialization: v.allow_materialization,
    allow_output_delivery: v.allow_output_delivery,
    status: v.status,
    quota_policy: v.quota_policy,
    purge_raw_on_retention: v.purge_raw_on_retention,
    auto_derive: v.auto_derive,
    ingest_rate_limit: v.ingest_rate_limit,
    redact: v.redact,
    // As stored: an unset preference keeps following the sensitivity.
    allow_external_processing: r.allow_external_processing === null ? null : r.allow_external_processing === 1,
  };
}

/** Settings as the sources row stores them (0/1 flags, JSON texts). */
export function encodeSettings(s: Omit<SourceSettings, 'display_name'> & { display_name?: string }) {
  return {
    display_name: s.display_name ?? '',
    sensitivity: s.sensitivity,
    retention_seconds: s.retention_seconds,
    max_active_observations: s.max_active_observations,
    max_active_bytes: s.max_active_bytes,
    allow_materialization: s.allow_materialization ? 1 : 0,
    allow_output_delivery: s.allow_output_delivery ? 1 : 0,
    status: s.status,
    quota_policy: s.quota_policy,
    purge_raw_on_retention: s.purge_raw_on_retention ? 1 : 0,
    auto_derive: JSON.stringify(s.auto_derive),
    ingest_rate_limit: s.ingest_rate_limit ? JSON.stringify(s.ingest_rate_limit) : null,
    redact: s.redact === null ? null : JSON.stringify(s.redact),
    allow_external_processing: s.allow_external_processing === null ? null : s.allow_external_processing ? 1 : 0,
  };
}

/**
 * Folds Kheish's flat rate-limit fields into `ingest_rate_limit`: the object, when sent (even
 * `null`), wins; otherwise a flat field sent alone keeps the other part of the current limit
 * (or Kheish's default).
 */
export function withRateLimit<
  T extends {
    ingest_rate_limit?: SourceSettings['ingest_rate_limit'];
    ingest_rate_limit_window_ms?: number;
    ingest_rate_limit_burst?: number;
  },
>(input: T, current: SourceSettings['ingest_rate_limit']): Omit<T, 'ingest_rate_limit_window_ms' | 'ingest_rate_limit_burst'> {
  const { ingest_rate_limit_window_ms: window_ms, ingest_rate_limit_burst: burst, ...rest } = input;
  if (rest.ingest_rate_limit !== undefined || (window_ms === undefined && burst === undefined)) return rest;
  return {
    ...rest,
    ingest_rate_limit: {
      window_ms: window_ms ?? current?.window_ms ?? KHEISH_RATE_LIMIT.window_ms,
      burst: burst ?? current?.burst ?? KHEISH_RATE_LIMIT.burst,
    },
  };
}

/** The object without its undefined fields (what a PATCH or upsert actually sent). */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
