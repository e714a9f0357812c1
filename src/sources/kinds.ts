// A leaf module (no imports): the console bundles it for its kind pickers.

/** The kinds of observation source. */
export const SOURCE_KINDS = ['screen_snapshot', 'webcam_snapshot', 'microphone_segment'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];
