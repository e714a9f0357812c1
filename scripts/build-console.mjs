// Builds the web console (console/src, preact + htm, plain CSS) into console/dist: one minified
// JS bundle and one stylesheet, both with a content hash in their names, and index.html naming
// them. `npm run build` runs it after tsc; the daemon serves console/dist at /console.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'console', 'src');
const out = join(root, 'console', 'dist');

const hashName = (base, ext, body) => `${base}-${createHash('sha256').update(body).digest('hex').slice(0, 10).toUpperCase()}.${ext}`;

const result = await build({
  entryPoints: [join(src, 'main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
});
const js = result.outputFiles[0].contents;
const css = readFileSync(join(src, 'app.css'));
const jsName = hashName('app', 'js', js);
const cssName = hashName('app', 'css', css);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, jsName), js);
writeFileSync(join(out, cssName), css);
const html = readFileSync(join(src, 'index.html'), 'utf8')
  .replace('%APP_JS%', `/console/${jsName}`)
  .replace('%APP_CSS%', `/console/${cssName}`);
writeFileSync(join(out, 'index.html'), html);
if (process.env.OBSERVD_BUILD_VERBOSE) {
  const total = readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0);
  console.log(`console: ${jsName} ${js.length} B, ${cssName} ${css.length} B, ${total} B in all`);
}
