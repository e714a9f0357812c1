// Debian's Chromium and the flags it is launched with, shared by the console tests
// (test/helpers/browser.ts) and the screen-frame generator (bench/screen-frames.mjs).
// Plain .mjs so the benchmarks run on node without a build; types in chromium.d.mts.

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing). */
export const CHROMIUM = process.env.OBSERVD_CHROMIUM ?? '/usr/bin/chromium';

/** Headless, unsandboxed (containers), and quiet: no GPU, QUIC, first-run UI, sync or background fetches. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
