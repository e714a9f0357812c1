import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { convertStore } from '../crypto/convert.js';
import { deriveKeys, readKeyFile } from '../crypto/keys.js';
import { MARKER_FILE, resolveStoreKeys } from '../crypto/store.js';
import { commonArgs } from './args.js';

/** A test hook: `OBSERVD_TEST_CRASH_AT=<point>` kills the conversion at that point, as a power cut would. */
function crashHook(): (point: string) => void {
  const at = process.env.OBSERVD_TEST_CRASH_AT;
  return (point) => {
    if (point === at) process.kill(process.pid, 'SIGKILL');
  };
}

/**
 * `observd encrypt`: converts a plain data directory, in place and crash-safely, into an
 * encrypted one under the key named by `encryption.key_file` / `OBSERVD_ENCRYPTION_KEY_FILE`.
 * The daemon must be stopped.
 */
export async function encryptCommand(argv: string[]): Promise<number> {
  const config = commonArgs(argv).config();
  const keyFile = config.encryption.key_file;
  if (!keyFile) {
    console.error(
      'observd encrypt needs the key: set encryption.key_file or OBSERVD_ENCRYPTION_KEY_FILE (create it with: head -c 32 /dev/urandom > FILE)',
    );
    return 2;
  }
  if (existsSync(join(config.data_dir, MARKER_FILE))) {
    console.error(`${config.data_dir} is already encrypted (use observd rekey to change its key)`);
    return 1;
  }
  // Checks the store is plain (finishing an interrupted conversion first).
  resolveStoreKeys(config.data_dir, undefined);
  const to = deriveKeys(readKeyFile(keyFile));
  const report = await convertStore(config.data_dir, undefined, to, crashHook());
  console.log(JSON.stringify({ encrypted: config.data_dir, ...report }));
  return 0;
}

/**
 * `observd rekey --new-key-file FILE`: re-encrypts an encrypted data directory under a new key,
 * crash-safely; the current key comes from the configuration. The daemon must be stopped; start
 * it again with the new key file.
 */
export async function rekeyCommand(argv: string[]): Promise<number> {
  const args = commonArgs(argv, { 'new-key-file': { type: 'string' } });
  const config = args.config();
  const newKeyFile = (args.values as { 'new-key-file'?: string })['new-key-file'];
  if (!newKeyFile || !config.encryption.key_file) {
    console.error('usage: observd rekey --new-key-file FILE (the current key from encryption.key_file or OBSERVD_ENCRYPTION_KEY_FILE)');
    return 2;
  }
  if (!existsSync(join(config.data_dir, MARKER_FILE))) {
    console.error(`${config.data_dir} is not encrypted (use observd encrypt)`);
    return 1;
  }
  const from = resolveStoreKeys(config.data_dir, config.encryption.key_file)!;
  const to = deriveKeys(readKeyFile(newKeyFile));
  const report = await convertStore(config.data_dir, from, to, crashHook());
  console.log(JSON.stringify({ rekeyed: config.data_dir, ...report }));
  return 0;
}
