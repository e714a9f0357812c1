// Renders a realistic one-frame-per-second screen capture sequence with the system Chromium
// (playwright-core driving /usr/bin/chromium): a desktop with an editor being typed into, a chat
// that scrolls as messages arrive, a terminal printing, idle stretches with a ticking clock and a
// blinking cursor, and switches between the windows. Each frame is a 1920x1080 PNG with the
// ground-truth text beside it: the words visible in the viewport, read from the DOM (each word's
// box must lie inside the viewport and inside every clipping ancestor).
//   node bench/screen-frames.mjs [--frames 120] [--out bench/.cache/screen-frames]
// Frames are cached (bench/.cache is git-ignored); a cache made for the same sequence is reused.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';
import { ROOT, arg } from './lib.mjs';

/** Bump when the pages or the script change: cached frames of another version are rendered again. */
const GENERATOR_VERSION = 3;

/** The scenario of each second, in order; 120 frames by default. */
function timeline(frames = 120) {
  const plan = [
    ['editor', 30],
    ['idle', 15],
    ['chat', 30],
    ['terminal', 25],
    ['switch', 20],
  ];
  const total = plan.reduce((n, [, k]) => n + k, 0);
  const out = [];
  for (const [name, k] of plan) for (let i = 0; i < Math.max(1, Math.round((k * frames) / total)); i++) out.push(name);
  return out.slice(0, frames);
}

const WORDS = `the agent reads every frame and keeps the canonical text of the screen so that later runs can search
what was visible when a decision was made observation daemon derivation queue backlog latency budget
release notes invoice meeting tomorrow deploy review status error retry cache stream source window
terminal editor message channel thread build passed failed warning config value function return`.split(/\s+/);

function words(seed, n) {
  let x = (seed * 2654435761) >>> 0;
  const out = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(WORDS[(x >>> 8) % WORDS.length]);
  }
  return out.join(' ');
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><style>
* { box-sizing: border-box; margin: 0; padding: 0; }
body { width: 1920px; height: 1080px; overflow: hidden; background: #dfe3ea; font: 18px "DejaVu Sans", sans-serif; color: #1b1f27; }
#taskbar { position: absolute; left: 0; right: 0; bottom: 0; height: 44px; background: #252a33; color: #f2f4f8; display: flex; align-items: center; padding: 0 18px; gap: 28px; font-size: 18px; }
#taskbar .app { padding: 6px 12px; border-radius: 4px; }
#taskbar .app.on { background: #3b4352; }
#clock { margin-left: auto; font-variant-numeric: tabular-nums; }
.win { position: absolute; left: 40px; top: 30px; width: 1840px; height: 986px; background: #fff; border: 1px solid #9aa3b2; display: none; flex-direction: column; }
.win.on { display: flex; }
.title { height: 40px; background: #eef1f5; border-bottom: 1px solid #c8ced8; padding: 9px 16px; font-weight: bold; }
#editor .body { display: flex; flex: 1; min-height: 0; }
#files { width: 300px; background: #f5f6f8; border-right: 1px solid #d5dae2; padding: 14px; line-height: 32px; }
#code { flex: 1; padding: 14px 24px; font: 20px "DejaVu Sans Mono", monospace; line-height: 32px; white-space: pre; overflow: hidden; }
#status { height: 34px; border-top: 1px solid #d5dae2; padding: 6px 16px; background: #f5f6f8; font-size: 16px; }
.cursor { display: inline-block; width: 2px; height: 22px; background: #111; vertical-align: middle; }
.cursor.off { visibility: hidden; }
#chat .body { display: flex; flex: 1; min-height: 0; }
#channels { width: 280px; background: #3f2f4f; color: #f4eefa; padding: 16px; line-height: 36px; }
#thread { flex: 1; display: flex; flex-direction: column; min-height: 0; }
#messages { flex: 1; overflow: hidden; padding: 12px 22px; display: flex; flex-direction: column; justify-content: flex-end; }
.msg { padding: 8px 0; line-height: 28px; }
.msg b { margin-right: 10px; }
#input { height: 64px; border-top: 1px solid #d5dae2; padding: 16px 22px; font-size: 20px; }
#terminal { background: #111418; }
#terminal .title { background: #20252d; color: #e8ecf2; border-bottom-color: #333a45; }
#term { flex: 1; padding: 12px 18px; font: 20px "DejaVu Sans Mono", monospace; line-height: 30px; color: #d7dde6; white-space: pre; overflow: hidden; display: flex; flex-direction: column; justify-content: flex-end; }
</style></head><body>
<div id="editor" class="win"><div class="title">notes.md - Editor</div><div class="body"><div id="files"></div><div id="code"></div></div><div id="status"></div></div>
<div id="chat" class="win"><div class="title">Team chat - #release</div><div class="body"><div id="channels"></div><div id="thread"><div id="messages"></div><div id="input"></div></div></div></div>
<div id="terminal" class="win"><div class="title">Terminal - bash</div><div id="term"></div></div>
<div id="taskbar"><span class="app" data-w="editor">Editor</span><span class="app" data-w="chat">Chat</span><span class="app" data-w="terminal">Terminal</span><span id="clock"></span></div>
</body></html>`;

/** Runs in the page: the state machine of the desktop, advanced one second per call. */
function pageScript() {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const st = {
    win: 'editor',
    code: [],
    typing: '',
    chat: [],
    draft: '',
    term: [],
    clock: 9 * 3600 + 41 * 60 + 7,
    tick: 0,
  };
  window.__desk = { st };
  window.__init = (seedText) => {
    const w = seedText;
    $('files').innerHTML = ['README.md', 'notes.md', 'plan.md', 'src/daemon.ts', 'src/queue.ts', 'test/ocr.test.ts']
      .map((f) => `<div>${f}</div>`)
      .join('');
    $('channels').innerHTML = ['# general', '# release', '# ops', '# random', 'Dana Lee', 'Omar Haddad']
      .map((c) => `<div>${c}</div>`)
      .join('');
    for (let i = 0; i < 14; i++) st.code.push(w(100 + i, 7 + (i % 4)));
    for (let i = 0; i < 12; i++) st.chat.push([['Dana', 'Omar', 'Priya', 'Lukas'][i % 4], w(200 + i, 6 + (i % 5))]);
    for (let i = 0; i < 10; i++) st.term.push(`$ ${w(300 + i, 4)}`);
  };
  window.__render = () => {
    for (const id of ['editor', 'chat', 'terminal']) $(id).classList.toggle('on', st.win === id);
    for (const a of document.querySelectorAll('#taskbar .app')) a.classList.toggle('on', a.dataset.w === st.win);
    const t = st.clock;
    const hh = String(Math.floor(t / 3600)).padStart(2, '0');
    const mm = String(Math.floor(t / 60) % 60).padStart(2, '0');
    const ss = String(t % 60).padStart(2, '0');
    $('clock').textContent = `${hh}:${mm}:${ss}`;
    const cursor = `<span class="cursor${st.tick % 2 ? ' off' : ''}"></span>`;
    $('code').innerHTML = `${st.code.map(esc).join('\n')}\n${esc(st.typing)}${cursor}`;
    $('status').textContent = `Ln ${st.code.length + 1}, Col ${st.typing.length + 1}   UTF-8   Markdown`;
    $('messages').innerHTML = st.chat.map(([who, text]) => `<div class="msg"><b>${who}</b>${esc(text)}</div>`).join('');
    $('input').innerHTML = esc(st.draft || 'Message #release') + (st.draft ? cursor : '');
    $('term').innerHTML = st.term.slice(-30).map(esc).join('\n');
  };
  /** The words visible now, in reading order, from the DOM: each word's box within the viewport and every clipping ancestor. */
  window.__visibleText = () => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const clipOf = (el) => {
      let r = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
      for (let e = el; e && e !== document.body; e = e.parentElement) {
        const cs = getComputedStyle(e);
        if (cs.display === 'none' || cs.visibility === 'hidden') return null;
        if (cs.overflow !== 'visible') {
          const b = e.getBoundingClientRect();
          r = {
            left: Math.max(r.left, b.left),
            top: Math.max(r.top, b.top),
            right: Math.min(r.right, b.right),
            bottom: Math.min(r.bottom, b.bottom),
          };
        }
      }
      return r;
    };
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const clip = clipOf(n.parentElement);
      if (!clip) continue;
      const re = /\S+/g;
      let m;
      while ((m = re.exec(n.data))) {
        const range = document.createRange();
        range.setStart(n, m.index);
        range.setEnd(n, m.index + m[0].length);
        const b = range.getBoundingClientRect();
        if (b.width === 0 || b.height === 0) continue;
        if (b.top < clip.top - 1 || b.bottom > clip.bottom + 1 || b.left < clip.left - 1 || b.right > clip.right + 1) continue;
        out.push({ w: m[0], x: b.left, y: b.top + b.height / 2 });
      }
    }
    // Reading order: rows (by centre, 8 px tolerance), then left to right.
    out.sort((a, b) => (Math.abs(a.y - b.y) > 8 ? a.y - b.y : a.x - b.x));
    return out.map((o) => o.w).join(' ');
  };
}

/** Advances the desktop by one second for `scenario` (runs in Node, mutating the page's state). */
function stepScript(scenario, i, sentence) {
  return `(() => {
    const st = window.__desk.st; const i = ${i}; const scenario = ${JSON.stringify(scenario)}; const sentence = ${JSON.stringify(sentence)};
    st.clock += 1; st.tick += 1;
    if (scenario === 'editor') {
      st.win = 'editor';
      // About four characters a second; a finished line starts a new one.
      const target = sentence;
      if (st.typing.length >= target.length) { st.code.push(st.typing); st.typing = ''; }
      else st.typing = target.slice(0, st.typing.length + 4);
    } else if (scenario === 'idle') {
      // Nothing but the clock and the cursor.
    } else if (scenario === 'chat') {
      st.win = 'chat';
      if (i % 3 === 0) { st.chat.push([['Dana', 'Omar', 'Priya', 'Lukas'][i % 4], sentence]); st.draft = ''; }
      else st.draft = sentence.slice(0, (i % 3) * 9);
    } else if (scenario === 'terminal') {
      st.win = 'terminal';
      st.term.push('[' + String(i).padStart(3, '0') + '] ' + sentence);
      if (i % 2 === 0) st.term.push('  ok ' + sentence.split(' ').slice(0, 3).join(' '));
    } else if (scenario === 'switch') {
      if (i % 4 === 0) st.win = ['editor', 'chat', 'terminal'][(i / 4) % 3];
    }
    window.__render();
  })()`;
}

/**
 * Renders (or loads from the cache) the sequence: returns { dir, frames: [{ file, scenario, text }] }.
 * `out` defaults to bench/.cache/screen-frames-<frames>.
 */
export async function screenFrames({ frames = 120, out } = {}) {
  const dir = out ?? join(ROOT, 'bench', '.cache', `screen-frames-${frames}`);
  const manifestFile = join(dir, 'manifest.json');
  if (existsSync(manifestFile)) {
    const m = JSON.parse(readFileSync(manifestFile, 'utf8'));
    if (m.version === GENERATOR_VERSION && m.frames.length === frames) return { dir, frames: m.frames, cached: true };
  }
  mkdirSync(dir, { recursive: true });
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'observd-chromium-'));
  // A fresh profile directory per run (playwright takes it as launchPersistentContext's argument).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1920, height: 1080 },
    deviceScaleFactor: 1,
    args: [...CHROMIUM_ARGS],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.setContent(PAGE);
    await page.evaluate(`(${pageScript.toString()})()`);
    await page.evaluate(
      `(() => { const WORDS = ${JSON.stringify(WORDS)}; ${words.toString()}; window.__init(words); window.__render(); })()`,
    );
    const plan = timeline(frames);
    const list = [];
    for (let i = 0; i < plan.length; i++) {
      await page.evaluate(stepScript(plan[i], i, words(1000 + Math.floor(i / 3), 9)));
      const file = `frame-${String(i).padStart(4, '0')}.png`;
      writeFileSync(join(dir, file), await page.screenshot({ type: 'png' }));
      list.push({ file, scenario: plan[i], text: await page.evaluate('window.__visibleText()') });
    }
    writeFileSync(manifestFile, `${JSON.stringify({ version: GENERATOR_VERSION, frames: list }, null, 1)}\n`);
    return { dir, frames: list, cached: false };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t = performance.now();
  const r = await screenFrames({ frames: Number(arg('frames', 120)), out: arg('out', undefined) });
  console.log(JSON.stringify({ dir: r.dir, frames: r.frames.length, cached: r.cached, seconds: Math.round(performance.now() - t) / 1000 }));
}
