import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sentMediaTypeOf } from '../observations/media.js';

/**
 * `observd upload --source ID --token-file FILE [--url URL] [--stream S] [--key K] FILE`: sends
 * one file to a running daemon as a multipart upload (streamed from disk) and prints the
 * observation. Exits 1 with the problem's code and detail when the daemon refuses it.
 */
export async function uploadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:4000' },
      source: { type: 'string' },
      'token-file': { type: 'string' },
      stream: { type: 'string' },
      key: { type: 'string' },
      'media-type': { type: 'string' },
    },
  });
  const file = positionals[0];
  if (!file || !values.source || !values['token-file']) {
    console.error('usage: observd upload --source ID --token-file FILE [--url URL] [--stream S] [--key K] [--media-type T] FILE');
    return 2;
  }
  const mediaType = values['media-type'] ?? sentMediaTypeOf(file);
  if (!mediaType) {
    console.error(`cannot tell the media type of ${file}; pass --media-type`);
    return 2;
  }
  const form = new FormData();
  form.set('file', await openAsBlob(file, { type: mediaType }), basename(file));
  form.set(
    'observation',
    JSON.stringify({
      idempotency_key: values.key ?? `${basename(file)}:${Date.now()}`,
      upload: { file_name: basename(file), media_type: mediaType },
      ...(values.stream ? { stream_id: values.stream } : {}),
    }),
  );
  const token = readFileSync(values['token-file'], 'utf8').trim();
  const res = await fetch(`${values.url}/v1/observation-sources/${encodeURIComponent(values.source)}/observations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const body = await res.text();
  if (!res.ok) {
    let problem: { code?: string; detail?: string } = {};
    try {
      problem = JSON.parse(body);
    } catch {
      /* not JSON */
    }
    console.error(`upload refused: ${res.status} ${problem.code ?? ''} ${problem.detail ?? body}`.trim());
    return 1;
  }
  console.log(body);
  return 0;
}
