/** A decoded RIFF/WAVE file of linear PCM (integer or float) samples; `data` is interleaved frames. */
export interface PcmWav {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  float: boolean;
  frames: number;
  data: Buffer;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;

/** Parses a PCM WAV; throws an Error saying what is wrong for anything else (compressed formats included). */
export function parseWav(bytes: Buffer): PcmWav {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt: Omit<PcmWav, 'frames' | 'data'> | undefined;
  let off = 12;
  while (off + 8 <= bytes.length) {
    const id = bytes.toString('latin1', off, off + 4);
    const size = bytes.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new Error('WAV fmt chunk is truncated');
      let tag = bytes.readUInt16LE(body);
      if (tag === EXTENSIBLE && size >= 40) tag = bytes.readUInt16LE(body + 24);
      const bitsPerSample = bytes.readUInt16LE(body + 14);
      const float = tag === IEEE_FLOAT;
      if ((tag !== PCM && !float) || ![8, 16, 24, 32].includes(bitsPerSample) || (float && bitsPerSample !== 32)) {
        throw new Error(`WAV encoding ${tag}/${bitsPerSample}-bit is not linear PCM`);
      }
      const channels = bytes.readUInt16LE(body + 2);
      const sampleRate = bytes.readUInt32LE(body + 4);
      if (channels < 1 || sampleRate < 1) throw new Error('WAV has no channels or no sample rate');
      fmt = { sampleRate, channels, bitsPerSample, float };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data chunk comes before its fmt chunk');
      // Streaming writers leave the size unset (0 or 0xFFFFFFFF): take what is there.
      const end = Math.min(bytes.length, size === 0 ? bytes.length : body + size);
      const frameBytes = (fmt.bitsPerSample / 8) * fmt.channels;
      const frames = Math.floor((end - body) / frameBytes);
      return { ...fmt, frames, data: bytes.subarray(body, body + frames * frameBytes) };
    }
    off = body + size + (size & 1);
  }
  throw new Error('WAV has no data chunk');
}

/** Duration in seconds. */
export function durationOf(w: PcmWav): number {
  return w.frames / w.sampleRate;
}

/** Reads sample `i` (interleaved index) as a value in [-1, 1]. */
function reader(w: PcmWav): (i: number) => number {
  const d = w.data;
  if (w.float) return (i) => d.readFloatLE(i * 4);
  switch (w.bitsPerSample) {
    case 8:
      return (i) => (d[i] - 128) / 128;
    case 16:
      return (i) => d.readInt16LE(i * 2) / 32768;
    case 24:
      return (i) => d.readIntLE(i * 3, 3) / 8388608;
    default:
      return (i) => d.readInt32LE(i * 4) / 2147483648;
  }
}

/** True when every sample is exactly zero (digital silence), or there are no samples. */
export function isSilent(w: PcmWav): boolean {
  if (w.float) {
    for (let i = 0; i + 4 <= w.data.length; i += 4) if (w.data.readFloatLE(i) !== 0) return false;
    return true;
  }
  // Unsigned 8-bit PCM is centred on 128; signed PCM's zero is all-zero bytes.
  const zero = Buffer.alloc(64 * 1024, w.bitsPerSample === 8 ? 128 : 0);
  for (let off = 0; off < w.data.length; off += zero.length) {
    const part = w.data.subarray(off, off + zero.length);
    if (!part.equals(zero.subarray(0, part.length))) return false;
  }
  return true;
}

/** The minimum and maximum sample (channels mixed) in each of `columns` equal slices of the whole file. */
export function peaks(w: PcmWav, columns: number): { min: Float32Array; max: Float32Array } {
  const min = new Float32Array(columns);
  const max = new Float32Array(columns);
  const read = reader(w);
  const perColumn = w.frames / columns;
  for (let c = 0; c < columns; c++) {
    const from = Math.floor(c * perColumn);
    const to = Math.max(from + 1, Math.min(w.frames, Math.floor((c + 1) * perColumn)));
    let lo = 0;
    let hi = 0;
    // Very long files: sample at most ~4000 frames per column; peaks stay representative.
    const step = Math.max(1, Math.floor((to - from) / 4000));
    for (let f = from; f < to && f < w.frames; f += step) {
      let v = 0;
      for (let ch = 0; ch < w.channels; ch++) v += read(f * w.channels + ch);
      v /= w.channels;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    min[c] = lo;
    max[c] = hi;
  }
  return { min, max };
}
