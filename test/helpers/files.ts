import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every file under `dir` (the database, its -wal and -shm, blobs, tmp, uploads …). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** The files under `dir` whose bytes contain any of `markers`, each as `path: marker`. */
export function grepDir(dir: string, markers: string[]): string[] {
  const hits: string[] = [];
  for (const f of filesUnder(dir)) {
    const bytes = readFileSync(f);
    for (const m of markers) if (bytes.includes(m)) hits.push(`${f}: ${m}`);
  }
  return hits;
}
