// The baseline for the ingest benchmarks: a bare node:http server doing the minimum any durable
// ingest must do, and nothing else (no auth, validation, hashing, database or audit).
//   JSON:      read the body, JSON.parse, base64-decode upload.content_base64, write the bytes to
//              a new file, fsync, answer 201 with a small JSON.
//   multipart: stream the `file` part to a new file (busboy), fsync, answer 201.
// Bench code only. Logs {"msg":"baseline listening","address":"127.0.0.1:PORT"} like observd.
//   node bench/baseline-server.mjs --data-dir DIR [--bind 127.0.0.1:0]
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import busboy from 'busboy';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const dir = arg('data-dir');
if (!dir) {
  console.error('usage: node bench/baseline-server.mjs --data-dir DIR [--bind HOST:PORT]');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
const [host, port] = arg('bind', '127.0.0.1:0').split(':');
let seq = 0;
const newPath = () => join(dir, `${process.pid}-${++seq}.bin`);

function answer(res, status, body) {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function writeDurably(path, bytes) {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function ingestJson(req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  let body;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return answer(res, 400, { error: 'bad json' });
  }
  const bytes = Buffer.from(body?.upload?.content_base64 ?? '', 'base64');
  const path = newPath();
  await writeDurably(path, bytes);
  answer(res, 201, { id: seq, byte_length: bytes.length });
}

function ingestMultipart(req, res) {
  let bb;
  try {
    bb = busboy({ headers: req.headers });
  } catch {
    return answer(res, 400, { error: 'bad multipart' });
  }
  let written;
  let observation;
  bb.on('field', (name, value) => {
    if (name === 'observation') observation = value;
  });
  bb.on('file', (name, stream) => {
    if (name !== 'file' || written) return stream.resume();
    written = (async () => {
      const fh = await open(newPath(), 'wx');
      let size = 0;
      try {
        for await (const c of stream) {
          size += c.length;
          await fh.write(c);
        }
        await fh.sync();
        return size;
      } finally {
        await fh.close();
      }
    })();
    written.catch(() => {});
  });
  bb.on('error', () => answer(res, 400, { error: 'bad multipart' }));
  bb.on('close', async () => {
    if (!written) return answer(res, 400, { error: 'no file part' });
    try {
      JSON.parse(observation ?? '{}');
      const size = await written;
      answer(res, 201, { id: seq, byte_length: size });
    } catch (e) {
      answer(res, 500, { error: String(e) });
    }
  });
  req.pipe(bb);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') return answer(res, 200, { ok: true });
  const type = req.headers['content-type'] ?? '';
  const done = type.startsWith('multipart/form-data') ? ingestMultipart(req, res) : ingestJson(req, res);
  Promise.resolve(done).catch((e) => answer(res, 500, { error: String(e) }));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), host, () => {
  const a = server.address();
  console.log(JSON.stringify({ msg: 'baseline listening', address: `${a.address}:${a.port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
