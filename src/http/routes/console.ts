import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { notFound } from '../../errors.js';
import type { AppEnv } from '../auth.js';
import { noneMatch } from '../conditional.js';
import { doc } from '../openapi.js';

/** Where `npm run build` (scripts/build-console.mjs) writes the console; the same from src/ and dist/. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

/**
 * The console's only policy: everything from this origin, no inline script or style, media only
 * from this origin or blob: URLs (the console fetches media with its bearer token and hands the
 * bytes to <img>/<audio> as blobs), never framed.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

interface ConsoleFile {
  body: Buffer;
  type: string;
  etag: string;
  /** Built names carry a content hash (`app-3F2K.js`) and never change; index.html does. */
  immutable: boolean;
}

/** Reads the built console into memory (a few hundred KB at most); an empty map when it was not built. */
export function loadConsoleFiles(dir = CONSOLE_DIR): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(name, { body, type, etag, immutable: name !== 'index.html' && /-[A-Z0-9]{8,}\./.test(name) });
  }
  return files;
}

/**
 * `/console`: the web console's static files, served from the package with a strict CSP. The
 * page itself holds no data and needs no token: every API call it makes carries the bearer the
 * user typed, exactly like curl.
 */
export function consoleRoutes(files = loadConsoleFiles()) {
  const app = new Hono<AppEnv>();

  const serve = (name: string, ifNoneMatch: string | undefined) => {
    const file = files.get(name);
    if (!file) {
      if (name === 'index.html') throw notFound('the console (it was not built: run `npm run build`)');
      throw notFound(`console file "${name}"`);
    }
    const headers: Record<string, string> = {
      'content-type': file.type,
      etag: file.etag,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': CONSOLE_CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
    };
    if (noneMatch(ifNoneMatch, file.etag)) {
      return new Response(null, { status: 304, headers });
    }
    headers['content-length'] = String(file.body.length);
    return new Response(new Uint8Array(file.body), { status: 200, headers });
  };

  app.get(
    '/',
    describeRoute(
      doc({ summary: 'The web console (HTML page; no token needed, it holds no data)', auth: 'none', responseMedia: 'text/html' }),
    ),
    (c) => serve('index.html', c.req.header('if-none-match')),
  );
  app.get(
    '/:file',
    describeRoute(doc({ summary: "The web console's built script and stylesheet", auth: 'none', responseMedia: 'text/javascript' })),
    (c) => {
      const name = c.req.param('file');
      // Only names of built files: no nesting, no dot segments, nothing outside the build directory.
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name === 'index.html') throw notFound(`console file "${name}"`);
      return serve(name, c.req.header('if-none-match'));
    },
  );
  return app;
}
