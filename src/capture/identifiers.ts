/**
 * Kheish's identifier rules for batch and machine ids (`ensure_identifier`, `sanitize_identifier`)
 * and its redaction of free text an agent or operator sends (agent versions, revoke reasons).
 */

/** Why a raw identifier is refused, or undefined when it is acceptable. */
export function identifierProblem(raw: string): string | undefined {
  const trimmed = raw.trim();
  if (!trimmed) return 'must not be empty';
  if (!/^[A-Za-z0-9\-_.\s]+$/.test(trimmed)) {
    return 'may contain only ASCII letters, digits, dashes, underscores, dots, or whitespace';
  }
  if (!normalizeIdentifier(trimmed)) return 'must contain an ASCII letter or digit';
  return undefined;
}

/**
 * The normalized form: lower case, each run of `- _ .` or whitespace one `-`, edges trimmed
 * (`Desk Mac.02` → `desk-mac-02`). Characters outside the rule are dropped (validation refuses them first).
 */
export function normalizeIdentifier(raw: string): string {
  let out = '';
  let dash = false;
  for (const ch of raw.trim()) {
    let mapped: string | undefined;
    if (/^[A-Za-z0-9]$/.test(ch)) mapped = ch.toLowerCase();
    else if (/^[-_.\s]$/.test(ch)) mapped = '-';
    if (mapped === undefined) continue;
    if (mapped === '-') {
      if (dash) continue;
      dash = true;
    } else dash = false;
    out += mapped;
  }
  return out.replace(/^-+|-+$/g, '');
}

/** Whitespace runs collapsed to one space, edges trimmed. */
export function collapseWhitespace(s: string): string {
  return s.trim().replace(/\s+/g, ' ');
}

/**
 * True for text that looks like it carries a credential: a bearer/token/password assignment, a
 * known token prefix, or a long run of hex or base64 characters.
 */
export function looksSecret(s: string): boolean {
  return (
    /\b(bearer|authorization|password|passwd|secret|api[_-]?key|token)\s*[:=]/i.test(s) ||
    /\b(khc|obt|sk|ghp|gho|xox[abp]|whsec)[_-][A-Za-z0-9]{8,}/i.test(s) ||
    /[A-Fa-f0-9]{32,}/.test(s) ||
    /[A-Za-z0-9+/_-]{40,}/.test(s)
  );
}

/** A free-text field as stored: collapsed, cut or redacted (`redacted` replaces it when over `max` with `redactLong`, or secret-looking). */
export function sanitizeText(raw: string, opts: { max: number; redacted: string; redactLong: boolean }): string | undefined {
  const s = collapseWhitespace(raw);
  if (!s) return undefined;
  if (looksSecret(s)) return opts.redacted;
  if (s.length > opts.max) return opts.redactLong ? opts.redacted : s.slice(0, opts.max);
  return s;
}
