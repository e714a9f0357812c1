/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing). */
export declare const CHROMIUM: string;
/** Headless, unsandboxed (containers), and quiet: no GPU, QUIC, first-run UI, sync or background fetches. */
export declare const CHROMIUM_ARGS: readonly string[];
