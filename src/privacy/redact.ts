/**
 * PII redaction of canonical text: small detectors, each a regular expression narrowed by a
 * check (Luhn for cards, mod-97 for IBANs, issuer prefixes, entropy and context for secrets), so
 * ordinary screen text (code, logs, version numbers, dates, hashes) is left alone. Every match
 * becomes a typed placeholder such as `[email]`. Pure functions, no I/O.
 */

import type { RedactionType } from './types.js';

/** One detected span of `text`: [start, end). */
export interface PiiSpan {
  type: RedactionType;
  start: number;
  end: number;
}

type Detector = (text: string, out: PiiSpan[]) => void;

// ---------------------------------------------------------------- email

/** Extensions that follow `@` in file names (`icon@2x.png`), never top-level domains people mail. */
const FILE_TLDS = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'svg',
  'webp',
  'ico',
  'js',
  'mjs',
  'ts',
  'tsx',
  'jsx',
  'css',
  'json',
  'md',
  'txt',
  'py',
  'rs',
  'go',
  'lock',
  'yaml',
  'yml',
  'toml',
  'map',
]);
const EMAIL =
  /(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-])/g;

const email: Detector = (text, out) => {
  if (!text.includes('@')) return;
  for (const m of text.matchAll(EMAIL)) {
    if (FILE_TLDS.has(m[1].toLowerCase())) continue;
    if (text.slice(Math.max(0, m.index - 3), m.index) === '://') continue; // user@host in a URL
    out.push({ type: 'email', start: m.index, end: m.index + m[0].length });
  }
};

// ---------------------------------------------------------------- card

const CARD = /(?<![\w.-])(?:\d[ -]?){12,18}\d(?![\w-]|\.\d)/g;

/** Luhn checksum over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes of the card networks people type or see on screen (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay). */
const CARD_PREFIX = /^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|6(?:011|5|4[4-9]|2)|35|3(?:0[0-5]|[689]))/;

const card: Detector = (text, out) => {
  for (const m of text.matchAll(CARD)) {
    const raw = m[0];
    const digits = raw.replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19) continue;
    // Separated numbers come in groups of 4 (Amex 4-6-5): refuse odd groupings such as phone numbers.
    if (/[ -]/.test(raw) && !/^\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?$|^\d{4}[ -]\d{6}[ -]\d{4,5}$/.test(raw)) continue;
    if (!CARD_PREFIX.test(digits) || !luhnValid(digits)) continue;
    out.push({ type: 'card', start: m.index, end: m.index + raw.length });
  }
};

// ---------------------------------------------------------------- iban

const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])/g;

/** ISO 13616 mod-97 check of an IBAN without spaces. */
export function ibanValid(iban: string): boolean {
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of rearranged) {
    const c = ch.charCodeAt(0);
    const v = c >= 65 ? String(c - 55) : ch;
    for (const d of v) rest = (rest * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rest === 1;
}

const iban: Detector = (text, out) => {
  for (const m of text.matchAll(IBAN)) {
    if (!ibanValid(m[0].replace(/ /g, ''))) continue;
    out.push({ type: 'iban', start: m.index, end: m.index + m[0].length });
  }
};

// ---------------------------------------------------------------- ip

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`(?<![\\w.])${OCTET}(?:\\.${OCTET}){3}(?![\\w]|\\.\\d)`, 'g');
const IPV6 =
  /(?<![\w:.])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}|(?:[0-9A-Fa-f]{1,4}:){2,7}:|::(?:[0-9A-Fa-f]{1,4}:){1,6}[0-9A-Fa-f]{1,4})(?![\w:])/g;

/** Addresses that name no one: unspecified, loopback, broadcast, netmasks. */
function ipv4Exempt(ip: string): boolean {
  return ip.startsWith('127.') || ip === '0.0.0.0' || ip.startsWith('255.');
}

const ip: Detector = (text, out) => {
  if (text.includes('.')) {
    for (const m of text.matchAll(IPV4)) {
      // "v1.2.3.4", "version 1.0.0.0": four-part version numbers.
      const before = text.slice(Math.max(0, m.index - 9), m.index).toLowerCase();
      if (/(?:v|version\s?|build\s?)$/.test(before) || ipv4Exempt(m[0])) continue;
      out.push({ type: 'ip', start: m.index, end: m.index + m[0].length });
    }
  }
  // Every IPv6 shape has a `::` or eight groups: most text has neither, so skip the costly pattern.
  if (text.includes('::') || /(?:[0-9A-Fa-f]{1,4}:){7}/.test(text)) {
    for (const m of text.matchAll(IPV6)) {
      const groups = m[0].split(':').filter(Boolean);
      // `a::b` in C++ and Rust paths: a real compressed address has at least 3 groups or a long one.
      if (m[0].includes('::') && groups.length < 3 && !groups.some((g) => g.length === 4)) continue;
      // Clock times and MAC addresses have no `::` and fewer than 8 groups, so never reach here.
      if (!/[A-Fa-f]/.test(m[0]) && !m[0].includes('::')) continue;
      out.push({ type: 'ip', start: m.index, end: m.index + m[0].length });
    }
  }
};

// ---------------------------------------------------------------- phone

// International (+CC ...), North American ((555) 123-4567, 555-123-4567) and European national
// (06 12 34 56 78, 030 1234567) shapes, with separators; a bare run of digits is a phone number
// only after a word that says so.
const PHONE_INTL = /(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,5}(?![\w-]|\.\d)/g;
const PHONE_NANP = /(?<![\w.+-])(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4}(?![\w-]|\.\d)/g;
const PHONE_EU = /(?<![\w.+-])0\d{1,2}(?:[ ]\d{2}){4}(?![\w-]|\.\d)|(?<![\w.+-])0\d{2,4}[ /-]\d{5,8}(?![\w-]|\.\d)/g;
const PHONE_CONTEXT = /(?:\b(?:tel|phone|mobile|cell|call|fax|sms|whatsapp)\b[^\n\d]{0,12})(\d{9,13})(?!\d)/gi;

const phone: Detector = (text, out) => {
  const push = (start: number, end: number) => {
    const digits = text.slice(start, end).replace(/\D/g, '').length;
    if (digits >= 8 && digits <= 15) out.push({ type: 'phone', start, end });
  };
  for (const re of [PHONE_INTL, PHONE_NANP, PHONE_EU]) for (const m of text.matchAll(re)) push(m.index, m.index + m[0].length);
  for (const m of text.matchAll(PHONE_CONTEXT)) {
    const start = m.index + m[0].length - m[1].length;
    push(start, start + m[1].length);
  }
};

// ---------------------------------------------------------------- secret

/** Token shapes issued by well-known services; each is a secret whatever surrounds it. */
const SECRET_SHAPES = new RegExp(
  [
    'sk-(?:proj-|ant-(?:api\\d\\d-)?|live-)?[A-Za-z0-9_-]{20,}', // OpenAI, Anthropic
    '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}', // Stripe secret / restricted keys
    'gh[pousr]_[A-Za-z0-9]{30,}', // GitHub tokens
    'github_pat_[A-Za-z0-9_]{40,}',
    'glpat-[A-Za-z0-9_-]{20,}', // GitLab
    '(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}', // AWS access key ids
    'xox[abposr]-[A-Za-z0-9-]{10,}', // Slack
    'xapp-\\d-[A-Za-z0-9-]{10,}',
    'AIza[0-9A-Za-z_-]{35}', // Google API keys
    'npm_[A-Za-z0-9]{36}',
    'hf_[A-Za-z0-9]{30,}', // Hugging Face
    'SG\\.[A-Za-z0-9_-]{20,}\\.[A-Za-z0-9_-]{20,}', // SendGrid
    'eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}', // JSON Web Tokens
  ]
    .map((s) => `(?:${s})`)
    .join('|'),
  'g',
);
const SECRET_SHAPE = new RegExp(`(?<![A-Za-z0-9_-])(?:${SECRET_SHAPES.source})(?![A-Za-z0-9_-])`, 'g');
const PRIVATE_KEY = /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----|$)/g;
/** Words that name a credential, also inside identifiers (`DB_PASSWORD`, `secretAccessKey`). */
const KEYWORD =
  /pass(?:word|wd|phrase|code)?|pwd|secret|token|api[_ -]?key|apikey|access[_ -]?key|auth(?:orization)?|credentials?|private[_ -]?key/gi;
const VALUE = String.raw`["'${'`'}]?([^\s"'${'`'},;<>()[\]{}]{6,})`;
/** After a keyword: `label ...: value` / `label = value`, the separator a few words on, on one line. */
const ASSIGNED = new RegExp(String.raw`[\w-]*[^\n:=]{0,24}?["']?[ \t]*(?::=|=>|[:=])[ \t]*(?:bearer[ \t]+)?${VALUE}`, 'iy');
/** After a keyword: `password is value`, `token value`, on one line. */
const FOLLOWED = new RegExp(String.raw`[\w-]*[ \t]+(?:is[ \t]+)?${VALUE}`, 'iy');
const BEARER = /\bBearer\s+([A-Za-z0-9._~+/=-]{16,})/g;

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** True for a value that looks generated or chosen (a credential) rather than a word, path or code. */
function credentialLike(v: string, isPassword: boolean): boolean {
  if (/^(?:\*+|x+|\.+|•+|null|none|true|false|undefined|required|optional|redacted|hidden|changeme|example|string|number)$/i.test(v))
    return false;
  if (/^(?:\$|%|process\.|os\.|env\.|self\.|this\.|config\.|\[)/.test(v) || v.includes('(') || v.startsWith('[')) return false;
  if (/^[a-z][\w+.-]*:\/\/|^\/|^\.\.?\//i.test(v) || /^[^@\s]+@[^@\s]+\.[a-z]{2,}$/i.test(v)) return false; // URLs, paths, emails
  if (/^[A-Za-z_$][\w$]*(?:\??\.[A-Za-z_$][\w$]*)+$/.test(v)) return false; // member access: req.headers.authorization
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((r) => r.test(v)).length;
  if (/^[A-Za-z]+$/.test(v) || /^[a-z]+(?:[_.-][a-z]+)+$/.test(v)) return false; // words and identifiers
  if (/^\d+$/.test(v)) return isPassword && v.length >= 6;
  if (isPassword) return v.length >= 6 && classes >= 2;
  return v.length >= 12 && classes >= 2 && entropy(v) >= 3;
}

const secret: Detector = (text, out) => {
  for (const m of text.matchAll(SECRET_SHAPE)) out.push({ type: 'secret', start: m.index, end: m.index + m[0].length });
  if (text.includes('-----BEGIN'))
    for (const m of text.matchAll(PRIVATE_KEY)) out.push({ type: 'secret', start: m.index, end: m.index + m[0].length });
  for (const m of text.matchAll(BEARER)) {
    const start = m.index + m[0].length - m[1].length;
    out.push({ type: 'secret', start, end: start + m[1].length });
  }
  // Keywords first (a plain alternation, fast), then the value anchored right after each one.
  for (const k of text.matchAll(KEYWORD)) {
    const after = k.index + k[0].length;
    for (const re of [ASSIGNED, FOLLOWED]) {
      re.lastIndex = after;
      const m = re.exec(text);
      if (!m) continue;
      const value = m[1];
      const start = after + m[0].length - value.length;
      if (!credentialLike(value, /pass|pwd/i.test(text.slice(k.index, start)))) continue;
      out.push({ type: 'secret', start, end: start + value.length });
    }
  }
};

// ---------------------------------------------------------------- driver

const DETECTORS: Record<RedactionType, Detector> = { email, phone, card, iban, secret, ip };
/** When spans overlap, the more specific detector wins (a card number is not a phone number). */
const PRIORITY: Record<RedactionType, number> = { secret: 0, card: 1, iban: 2, email: 3, ip: 4, phone: 5 };

/** Every PII span of the given types in `text`, sorted, overlaps resolved (longer, then more specific, wins). */
export function findPii(text: string, types: readonly RedactionType[]): PiiSpan[] {
  if (types.length === 0 || text.length === 0) return [];
  const found: PiiSpan[] = [];
  for (const t of types) DETECTORS[t](text, found);
  found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start) || PRIORITY[a.type] - PRIORITY[b.type]);
  const kept: PiiSpan[] = [];
  for (const s of found) {
    const last = kept[kept.length - 1];
    if (last && s.start < last.end) {
      // Overlap: keep the one that covers more; on a tie the higher-priority type.
      const better =
        s.end - s.start > last.end - last.start || (s.end - s.start === last.end - last.start && PRIORITY[s.type] < PRIORITY[last.type]);
      if (better) kept[kept.length - 1] = s;
      continue;
    }
    kept.push(s);
  }
  return kept;
}

/** `text` with every PII span of the given types replaced by its placeholder (`[email]`, `[secret]`, …). */
export function redact(text: string, types: readonly RedactionType[]): string {
  const spans = findPii(text, types);
  if (spans.length === 0) return text;
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += `${text.slice(at, s.start)}[${s.type}]`;
    at = s.end;
  }
  return out + text.slice(at);
}
