import { createHash, randomBytes } from 'node:crypto';
import { stringify } from 'smol-toml';
import type { SourceKind } from '../sources/schemas.js';
import { normalizeIdentifier } from './identifiers.js';
import type { OsProfile, ProvisionRequest } from './schemas.js';

/** A token as Kheish mints them: `khc_` + 64 hex characters. */
export function captureToken(): string {
  return `khc_${randomBytes(32).toString('hex')}`;
}

/** One source an agent will own, with its fresh lease. */
export interface PlannedSource {
  source_id: string;
  display_name: string;
  kind: SourceKind;
  lease_id: string;
  upload_token: string;
}

/** One agent of a batch: its normalized id, credentials, sources and runtime config. */
export interface PlannedAgent {
  machine_id: string;
  os_profile: OsProfile;
  heartbeat_token: string;
  heartbeat_deadline_ms: number;
  token_expires_at_ms: number;
  capture_group_id: string;
  sources: PlannedSource[];
  config_toml: string;
}

const SPOOL_ROOT: Record<OsProfile, string> = {
  macos: '~/Library/Application Support/Kheish Capture/spool',
  linux: '~/.local/state/kheish-capture/spool',
  windows: '~/AppData/Local/Kheish Capture/spool',
};

/**
 * Problems Kheish's `validate` finds beyond the field schema: identifiers that collide after
 * normalization, sources the OS profile cannot capture, camera targets. Each is a field problem.
 */
export function provisionProblems(req: ProvisionRequest): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  const seen = new Set<string>();
  const s = req.sources;
  if (!s.screen && !s.camera && !s.system_audio && !s.microphone) {
    problems.push({ path: 'sources', message: 'at least one source kind must be enabled' });
  }
  req.agents.forEach((a, i) => {
    const id = normalizeIdentifier(a.machine_id);
    if (seen.has(id)) problems.push({ path: `agents.${i}.machine_id`, message: `duplicate machine_id after normalization: ${id}` });
    seen.add(id);
    const os = a.os_profile ?? req.os_profile;
    for (const k of ['screen', 'camera', 'system_audio'] as const) {
      if (s[k] && os !== 'macos') {
        problems.push({
          path: `agents.${i}.os_profile`,
          message: `os_profile ${os} does not support ${k.replace('_', ' ')} capture provisioning`,
        });
      }
    }
    const uid = a.camera_unique_id?.trim();
    const name = a.camera_name?.trim();
    if (uid && name)
      problems.push({ path: `agents.${i}`, message: `agent ${a.machine_id} cannot set both camera_unique_id and camera_name` });
    if (s.camera && !uid && !name) {
      problems.push({
        path: `agents.${i}`,
        message: `agent ${a.machine_id} requires camera_unique_id or camera_name when camera source is enabled`,
      });
    }
  });
  return problems;
}

/** SHA-256 of the normalized request (Kheish's `capture_agent_provision_request_fingerprint`). */
export function provisionFingerprint(req: ProvisionRequest): string {
  const opt = (v: string | null | undefined) => (v?.trim() ? v.trim() : null);
  const agents = req.agents
    .map((a) => ({
      machine_id: normalizeIdentifier(a.machine_id),
      os_profile: a.os_profile ?? req.os_profile,
      camera_unique_id: opt(a.camera_unique_id),
      camera_name: opt(a.camera_name),
      microphone_name: opt(a.microphone_name),
    }))
    .sort((x, y) => (x.machine_id < y.machine_id ? -1 : x.machine_id > y.machine_id ? 1 : 0));
  const canonical = {
    batch_id: normalizeIdentifier(req.batch_id),
    daemon_base_url: req.daemon_base_url.trim().replace(/\/+$/, ''),
    os_profile: req.os_profile,
    agents,
    sources: {
      screen: req.sources.screen,
      camera: req.sources.camera,
      system_audio: req.sources.system_audio,
      microphone: req.sources.microphone,
    },
    interval_ms: req.interval_ms,
    max_runs: req.max_runs ?? null,
    duration_ms: req.duration_ms ?? null,
    retention_seconds: req.retention_seconds,
    max_active_observations: req.max_active_observations,
    max_active_bytes: req.max_active_bytes,
    token_ttl_ms: req.token_ttl_ms,
    heartbeat_interval_ms: req.heartbeat_interval_ms,
    heartbeat_grace_ms: req.heartbeat_grace_ms,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/**
 * Plans every agent of a validated request at `issuedAt` (Kheish's
 * `build_capture_agent_provision_plan`): sources `<os>-<machine>-screen|camera|call-audio`, one
 * fresh token per source and per agent, and the runtime config (no admin token in it).
 */
export function planProvision(req: ProvisionRequest, issuedAt: number): PlannedAgent[] {
  const expires = issuedAt + req.token_ttl_ms;
  const deadline = issuedAt + req.heartbeat_interval_ms + req.heartbeat_grace_ms;
  const base = req.daemon_base_url.replace(/\/+$/, '');
  const trigger: Record<string, unknown> = { mode: 'interval', every_ms: req.interval_ms };
  if (req.max_runs != null) trigger.max_runs = req.max_runs;
  if (req.duration_ms != null) trigger.duration_ms = req.duration_ms;
  return req.agents.map((a) => {
    const machine = normalizeIdentifier(a.machine_id);
    const os = a.os_profile ?? req.os_profile;
    const group = `${machine}-capture`;
    const heartbeatToken = captureToken();
    const sources: PlannedSource[] = [];
    const configSources: Array<Record<string, unknown>> = [];
    const meta = (role: string) => ({
      schema: `kheish.${os}.capture.v1`,
      machine_id: machine,
      os_profile: os,
      capture_group_id: group,
      capture_group_kind: 'call_context',
      role,
    });
    const add = (suffix: string, name: string, kind: SourceKind) => {
      const source_id = `${os}-${machine}-${suffix}`;
      const s: PlannedSource = {
        source_id,
        display_name: `${machine} ${name}`,
        kind,
        lease_id: `lease-${source_id}-${randomBytes(8).toString('hex')}`,
        upload_token: captureToken(),
      };
      sources.push(s);
      return s;
    };
    const configSource = (s: PlannedSource, streamId: string, driver: Record<string, unknown>) =>
      configSources.push({
        source_id: s.source_id,
        display_name: s.display_name,
        kind: s.kind,
        enabled: true,
        stream_id: streamId,
        sensitivity: 'sensitive',
        trigger,
        remote: {
          ensure_exists: false,
          upload_token: s.upload_token,
          retention_seconds: req.retention_seconds,
          max_active_observations: req.max_active_observations,
          max_active_bytes: req.max_active_bytes,
          allow_materialization: true,
          allow_output_delivery: false,
        },
        driver,
      });
    if (req.sources.screen) {
      const s = add('screen', 'Main Display', 'screen_snapshot');
      configSource(s, 'screen:display:display-main', {
        driver: 'macos_screen_snapshot',
        target: { target: 'main_display' },
        output_format: 'png',
        file_name_prefix: `${machine}-screen`,
        metadata: meta('screenshot'),
      });
    }
    if (req.sources.camera) {
      const s = add('camera', 'External Webcam', 'webcam_snapshot');
      const uid = a.camera_unique_id?.trim();
      configSource(s, 'camera:external:primary', {
        driver: 'macos_camera_snapshot',
        target: uid ? { target: 'unique_id', unique_id: uid } : { target: 'name', name: a.camera_name!.trim() },
        output_format: 'jpeg',
        jpeg_quality: 92,
        external_only: true,
        reject_virtual: true,
        file_name_prefix: `${machine}-camera`,
        metadata: meta('webcam'),
      });
    }
    if (req.sources.system_audio || req.sources.microphone) {
      const s = add('call-audio', 'Call Audio', 'microphone_segment');
      if (req.sources.system_audio) {
        configSource(s, `call:${group}:conversation`, {
          driver: 'macos_system_audio',
          segment_duration_ms: req.interval_ms,
          sample_rate_hz: 48000,
          channel_count: 2,
          buffer_capacity_ms: req.interval_ms * 2,
          exclude_current_process: true,
          file_name_prefix: `${machine}-conversation`,
          metadata: meta('conversation'),
        });
      }
      if (req.sources.microphone) {
        configSource(s, `call:${group}:microphone`, {
          driver: 'microphone',
          segment_duration_ms: req.interval_ms,
          sample_rate_hz: 48000,
          channel_count: 1,
          file_name_prefix: `${machine}-microphone`,
          metadata: meta('microphone'),
          ...(a.microphone_name?.trim() ? { device_name: a.microphone_name.trim() } : {}),
        });
      }
    }
    const config = {
      capture_agent: {
        machine_id: machine,
        batch_id: req.batch_id,
        os_profile: os,
        heartbeat_url: `${base}/v1/capture-agents/${machine}/heartbeat`,
        heartbeat_token: heartbeatToken,
        heartbeat_interval_ms: req.heartbeat_interval_ms,
        heartbeat_grace_ms: req.heartbeat_grace_ms,
        heartbeat_deadline_ms: deadline,
        token_expires_at_ms: expires,
      },
      daemon: { base_url: req.daemon_base_url, request_timeout_ms: 30000, user_agent: `kheish-capture-agent/${machine}` },
      spool: {
        root_dir: SPOOL_ROOT[os],
        max_pending_items: 2048,
        max_pending_bytes: 512 * 1024 * 1024,
        upload_batch_size: 8,
        retry_initial_delay_ms: 500,
        retry_max_delay_ms: 30000,
      },
      sources: configSources,
    };
    return {
      machine_id: machine,
      os_profile: os,
      heartbeat_token: heartbeatToken,
      heartbeat_deadline_ms: deadline,
      token_expires_at_ms: expires,
      capture_group_id: group,
      sources,
      config_toml: stringify(config),
    };
  });
}
