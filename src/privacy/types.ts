// A leaf module (no imports): config validates `privacy.redact` against this list.

/** The kinds of PII `redact` can replace. */
export const REDACTION_TYPES = ['email', 'phone', 'card', 'iban', 'secret', 'ip'] as const;
export type RedactionType = (typeof REDACTION_TYPES)[number];
