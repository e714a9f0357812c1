import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3-multiple-ciphers';
import { AppError } from '../errors.js';
import { applyKey, type Db } from './open.js';

// One worker thread of a `ReadPool`: a read-only connection to the store, running the jobs the
// main thread posts (`{id, module, name, args}`) and answering `{id, result}` or `{id, error}`.

const { file, keyHex } = workerData as { file: string; keyHex?: string };
const db: Db = new Database(file, { readonly: true, fileMustExist: true });
if (keyHex) applyKey(db, keyHex);
// A small page cache and no memory map: pages come from the kernel's page cache (about 5% more
// CPU per page than through a map), so a long walk (an unlimited list) does not map the table a
// second time into the daemon's RSS beside the main connection's map.
db.pragma('cache_size = -8192');
db.pragma('mmap_size = 0');
db.pragma('busy_timeout = 5000');
// Fails here (SQLITE_NOTADB) rather than on the first job if the key cannot read the file.
db.prepare('SELECT COUNT(*) FROM sqlite_schema').get();

type Job = (db: Db, ...args: unknown[]) => unknown;
const modules = new Map<string, Record<string, Job>>();

parentPort!.on('message', async ({ id, module, name, args }: { id: number; module: string; name: string; args: unknown[] }) => {
  try {
    let mod = modules.get(module);
    if (!mod) modules.set(module, (mod = (await import(module)) as Record<string, Job>));
    parentPort!.postMessage({ id, result: mod[name](db, ...args) });
  } catch (e) {
    const err = e as { message?: string; code?: string };
    parentPort!.postMessage({ id, error: { message: String(err?.message ?? e), code: err?.code, app: e instanceof AppError } });
  }
});
