import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterAll, expect, it } from 'vitest';
import { jsonLines, runCli } from './helpers/child.js';

const dataDir = mkdtempSync(join(tmpdir(), 'observd-cli-agents-'));
const outDir = join(dataDir, 'agents-out');
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);
/** Two Linux agents with a microphone whose heartbeat deadlines pass at once. */
const provisionLab = (
  'agents provision --batch-id lab --agent-prefix lab --count 2 --enable-microphone --os-profile linux ' +
  '--heartbeat-interval-ms 1 --heartbeat-grace-ms 1'
).split(' ');

it('observd agents provision|list|get|revoke and observd alerts work on the data directory', async () => {
  const p = await cli(...provisionLab, '--out-dir', outDir);
  expect(p.code, p.stderr).toBe(0);
  const printed = JSON.parse(p.stdout);
  expect(printed.agents.map((a: { machine_id: string }) => a.machine_id)).toEqual(['lab-000', 'lab-001']);
  expect(printed.agents[0].heartbeat_token).toBe('<hidden>');
  expect(printed.agents[0].sources).toMatchObject([
    { source_id: 'linux-lab-000-call-audio', kind: 'microphone_segment', upload_token: '<hidden>' },
  ]);
  const file = join(outDir, 'lab-000.capture.toml');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const config = parseToml(readFileSync(file, 'utf8')) as { capture_agent: { heartbeat_token: string; heartbeat_url: string } };
  expect(config.capture_agent.heartbeat_token).toMatch(/^khc_[0-9a-f]{64}$/);
  expect(config.capture_agent.heartbeat_url).toBe('http://127.0.0.1:4000/v1/capture-agents/lab-000/heartbeat');

  // The same batch again: Kheish's exit code for 409.
  const replay = await cli(...provisionLab);
  expect(replay.code).toBe(6);

  const list = await cli('agents', 'list');
  expect(list.code, list.stderr).toBe(0);
  const rows = jsonLines(list.stdout);
  expect(rows.map((r) => r.machine_id)).toEqual(['lab-000', 'lab-001']);
  // Their 2 ms deadlines have passed: the read raised the alerts.
  expect(rows.every((r) => r.heartbeat_state === 'missing')).toBe(true);
  const alerts = await cli('alerts');
  expect(jsonLines(alerts.stdout).map((a) => a.kind)).toEqual(['missing_heartbeat', 'missing_heartbeat']);

  const get = await cli('agents', 'get', 'lab-001');
  expect(JSON.parse(get.stdout)).toMatchObject({ machine_id: 'lab-001', os_profile: 'linux' });
  expect((await cli('agents', 'get', 'nobody')).code).toBe(5);

  const revoke = await cli('agents', 'revoke', 'lab-001', '--reason', 'decommissioned');
  expect(JSON.parse(revoke.stdout)).toMatchObject({ status: 'revoked', revoked_reason: 'decommissioned' });
  const after = await cli('alerts');
  expect(jsonLines(after.stdout).map((a) => a.machine_id)).toEqual(['lab-000']);
  expect((await cli('agents', 'frobnicate')).code).toBe(2);
}, 120_000);

it('observd agent watch refuses an interval that is not a positive integer (NaN would be a 1 ms timer)', async () => {
  for (const flag of ['--scan-interval-ms', '--heartbeat-interval-ms']) {
    for (const value of ['abc', '0', '1.5']) {
      const r = await runCli(['agent', 'watch', dataDir, '--source', 's', flag, value], { env: { OBSERVD_UPLOAD_TOKEN: 'x' } });
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.stderr).toContain(`${flag} must be a positive integer`);
      expect(r.stderr).toContain('usage: observd agent watch');
    }
  }
});
