import { describe, expect, it } from 'vitest';
import { hashToken, tokenMatches } from '../src/sources/tokens.js';

// How long a comparison takes is measured in bench/token-timing.mjs (distributions over many
// samples; a wall-clock ratio is no assertion for a loaded machine). Here: the answers.
describe('upload token comparison', () => {
  it('admits only the exact token, whatever the wrong one looks like, and nothing when no hash is stored', () => {
    const real = 'screen-upload-token-0123456789abcdef';
    const stored = hashToken(real);
    expect(tokenMatches(real, stored)).toBe(true);
    for (const wrong of [real.replace(/.$/, 'X'), `X${real.slice(1)}`, 'wrong-but-16-chr', '', `${real} `, real.toUpperCase()]) {
      expect(tokenMatches(wrong, stored), wrong).toBe(false);
    }
    expect(tokenMatches(real, undefined)).toBe(false);
    expect(tokenMatches(real, null)).toBe(false);
    // A stored value of the wrong size (a corrupt row) never matches, not even its own digest prefix.
    expect(tokenMatches(real, stored.subarray(0, 16))).toBe(false);
    expect(hashToken(real)).toHaveLength(32);
  });
});
