import { workerCount } from '../cores.js';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { DerivationEngines } from './compute.js';
import { OcrPool } from './ocr.js';
import { ScreenText, type ScreenTextStats } from './screen-text.js';
import { Transcriber } from './transcribe.js';

/** The engines from the config: the OCR pool caches under the data directory; screen text only when incremental. */
export function createEngines(config: Config): DerivationEngines {
  const d = config.derivations;
  const ocr = new OcrPool({ size: ocrWorkers(d.ocr_workers), cachePath: join(config.data_dir, 'cache', 'ocr') });
  const s = d.screen_ocr;
  const screen = s.incremental
    ? new ScreenText(ocr, { history: s.history, maxRegionFraction: s.max_region_fraction, maxLanes: 32 })
    : undefined;
  return { ocr, transcriber: new Transcriber(config.transcription), screen };
}

/** `ocr_workers`: a number, or `auto` for one per core but one (leaving a core to the event loop), at least 1, at most 8. */
export function ocrWorkers(setting: number | 'auto', cores?: number): number {
  return workerCount(setting, 8, cores);
}

/** OCR work so far: recognitions run (whole or region) and how screen frames got their text. */
export function ocrStats(engines: DerivationEngines): { recognitions: number; screen: ScreenTextStats | null } {
  return { recognitions: engines.ocr.recognitions, screen: engines.screen ? { ...engines.screen.stats } : null };
}
