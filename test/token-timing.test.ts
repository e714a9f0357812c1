import { describe, expect, it } from 'vitest';
import { hashToken, tokenMatches } from '../src/sources/tokens.js';

/** Median of the per-call time of `fn` over `rounds` interleaved batches. */
function medians(fns: Array<() => void>, rounds = 400, perRound = 50): number[] {
  const samples: number[][] = fns.map(() => []);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < perRound; k++) fn();
      samples[i].push(Number(process.hrtime.bigint() - t0) / perRound);
    });
  }
  return samples.map((s) => s.sort((a, b) => a - b)[Math.floor(s.length / 2)]);
}

describe('upload token comparison', () => {
  it('takes the same time for a wrong token of the right length, of another length, and for a missing source', () => {
    const real = 'screen-upload-token-0123456789abcdef';
    const stored = hashToken(real);
    const sameLength = real.replace(/.$/, 'X');
    const sameLengthEarlyMiss = 'X' + real.slice(1);
    const short = 'wrong-but-16-chr';
    expect(sameLength.length).toBe(real.length);
    expect([tokenMatches(real, stored), tokenMatches(sameLength, stored), tokenMatches(short, stored)]).toEqual([true, false, false]);

    const [late, early, other, missing] = medians([
      () => tokenMatches(sameLength, stored),
      () => tokenMatches(sameLengthEarlyMiss, stored),
      () => tokenMatches(short, stored),
      () => tokenMatches(sameLength, undefined),
    ]);
    // The comparison is over fixed-length digests, so where a token differs, how long it is and
    // whether a hash exists at all move the time by far less than a network round trip could
    // resolve. A generous bound keeps this stable on a loaded machine.
    const base = Math.min(late, early, other, missing);
    for (const t of [late, early, other, missing]) expect(t / base).toBeLessThan(1.5);
  });
});
