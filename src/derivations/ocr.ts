import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Worker as ThreadWorker } from 'node:worker_threads';
import Tesseract from 'tesseract.js';
import type { OcrLine } from './screen-geometry.js';
import type { LineRecognizer } from './screen-splice.js';

const require = createRequire(import.meta.url);

/** The language of the shipped traineddata, and the directory holding it (the npm package). */
export const OCR_LANGUAGE = 'eng';
export const OCR_LANG_PATH = join(dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');

export interface OcrPoolOptions {
  /** Most workers alive at once. */
  size: number;
  /** Where tesseract.js may keep cache files; never the working directory. */
  cachePath: string;
  langPath?: string;
}

interface Slot {
  worker: Tesseract.Worker;
  /** Rejects the recognition running on this worker, if any (used when its thread dies). */
  fail?: (e: Error) => void;
  dead: boolean;
}

/**
 * A warm pool of tesseract.js workers, fully offline: the wasm core is loaded from
 * node_modules and the language data from the @tesseract.js-data package. Workers are created
 * on first use, up to `size`, reused across jobs and terminated by `close`.
 */
export class OcrPool implements LineRecognizer {
  /** Recognitions started so far (whole images and regions alike), for metrics and tests. */
  recognitions = 0;
  private idle: Slot[] = [];
  private slots = new Set<Slot>();
  private starting = 0;
  private waiters: Array<{ resolve: (s: Slot) => void; reject: (e: Error) => void }> = [];
  private closed = false;

  constructor(private opts: OcrPoolOptions) {}

  /** Workers alive now (for tests and metrics). */
  get workerCount(): number {
    return this.slots.size;
  }

  /** Recognizes the text of a PNG or JPEG; throws if the image cannot be read or the pool is closed. */
  async recognize(image: Buffer): Promise<string> {
    return (await this.run(image, { text: true })).text;
  }

  /** Recognizes the text lines of a PNG or JPEG, each with its box, in tesseract's reading order. */
  async recognizeLines(image: Buffer): Promise<OcrLine[]> {
    const page = await this.run(image, { text: false, blocks: true });
    const lines: OcrLine[] = [];
    for (const block of page.blocks ?? []) {
      for (const para of block.paragraphs) {
        for (const line of para.lines) lines.push(...segments(line));
      }
    }
    return lines;
  }

  private async run(image: Buffer, output: Partial<Tesseract.OutputFormats>): Promise<Tesseract.Page> {
    this.recognitions++;
    const slot = await this.acquire();
    try {
      const result = await new Promise<Tesseract.RecognizeResult>((resolve, reject) => {
        slot.fail = reject;
        slot.worker.recognize(image, {}, output).then(resolve, (e: unknown) => reject(asError(e)));
      });
      return result.data;
    } finally {
      slot.fail = undefined;
      this.release(slot);
    }
  }

  /** Terminates every worker; recognitions in progress or waiting reject. */
  async close(): Promise<void> {
    this.closed = true;
    const closedError = new Error('the OCR pool was closed');
    for (const w of this.waiters.splice(0)) w.reject(closedError);
    const all = [...this.slots];
    this.slots.clear();
    this.idle = [];
    for (const s of all) {
      s.dead = true;
      s.fail?.(closedError);
    }
    await Promise.all(all.map((s) => s.worker.terminate().catch(() => {})));
  }

  private acquire(): Promise<Slot> {
    if (this.closed) return Promise.reject(new Error('the OCR pool was closed'));
    const ready = this.idle.pop();
    if (ready) return Promise.resolve(ready);
    const waiting = new Promise<Slot>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.slots.size + this.starting < this.opts.size) this.spawn();
    return waiting;
  }

  private release(slot: Slot): void {
    if (slot.dead || this.closed) return;
    const next = this.waiters.shift();
    if (next) next.resolve(slot);
    else this.idle.push(slot);
  }

  private spawn(): void {
    this.starting++;
    mkdirSync(this.opts.cachePath, { recursive: true });
    Tesseract.createWorker(OCR_LANGUAGE, Tesseract.OEM.LSTM_ONLY, {
      langPath: this.opts.langPath ?? OCR_LANG_PATH,
      cachePath: this.opts.cachePath,
      // The data is already local; a cache would only save a gunzip, and a torn cache write
      // would break OCR until someone deleted it.
      cacheMethod: 'none',
      gzip: true,
      // Without a handler tesseract.js throws a failed job's error from its message listener,
      // which would take the whole daemon down.
      errorHandler: () => {},
      logger: () => {},
    })
      .then((worker) => {
        this.starting--;
        if (this.closed) return void worker.terminate();
        const slot: Slot = { worker, dead: false };
        const thread = (worker as unknown as { worker: ThreadWorker }).worker;
        const die = (e: Error) => {
          if (slot.dead) return;
          slot.dead = true;
          this.slots.delete(slot);
          this.idle = this.idle.filter((s) => s !== slot);
          slot.fail?.(new Error(`OCR worker stopped: ${e.message}`));
          if (this.waiters.length && !this.closed) this.spawn();
        };
        thread.on('error', die);
        thread.on('exit', (code) => die(new Error(`exit code ${code}`)));
        this.slots.add(slot);
        this.release(slot);
      })
      .catch((e: unknown) => {
        this.starting--;
        // Nothing will serve the waiters if no worker can start: fail them all.
        if (this.slots.size + this.starting === 0) {
          const err = new Error(`OCR worker could not start: ${asError(e).message}`);
          for (const w of this.waiters.splice(0)) w.reject(err);
        }
      });
  }
}

/**
 * A line split where its words are far apart (a taskbar's buttons and its clock, two panes side
 * by side): each part is a line of its own, so a change in one does not mean OCRing the others.
 * Each part keeps its words' boxes (word-level splicing re-reads only the words that changed).
 */
function segments(line: Tesseract.Line): OcrLine[] {
  const height = Math.max(1, line.bbox.y1 - line.bbox.y0);
  const out: OcrLine[] = [];
  let cur: Tesseract.Word[] = [];
  const flush = () => {
    const words = cur.filter((w) => w.text.trim());
    cur = [];
    if (!words.length) return;
    const boxes = words.map((w) => ({ text: w.text.trim(), top: w.bbox.y0, bottom: w.bbox.y1, left: w.bbox.x0, right: w.bbox.x1 }));
    out.push({
      text: boxes.map((w) => w.text).join(' '),
      top: Math.min(...boxes.map((w) => w.top)),
      bottom: Math.max(...boxes.map((w) => w.bottom)),
      left: Math.min(...boxes.map((w) => w.left)),
      right: Math.max(...boxes.map((w) => w.right)),
      words: boxes,
    });
  };
  for (const w of line.words ?? []) {
    const prev = cur[cur.length - 1];
    if (prev && w.bbox.x0 - prev.bbox.x1 > 3 * height) flush();
    cur.push(w);
  }
  flush();
  return out;
}

/** tesseract.js rejects with strings such as "Error: …"; make them plain Errors. */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e).replace(/^Error:\s*/, ''));
}
