import { AppError } from '../errors.js';

/** One term of a user's query: a word or a quoted phrase, possibly a prefix, possibly excluded. */
export interface QueryTerm {
  text: string;
  phrase: boolean;
  prefix: boolean;
  exclude: boolean;
}

/** Most terms one query may have (each costs an index lookup). */
export const MAX_TERMS = 32;
/** A prefix needs this many characters before `*`; shorter ones would expand to much of the vocabulary. */
export const MIN_PREFIX_CHARS = 2;

/** True when the unicode61 tokenizer would find at least one token in `s` (letters or digits). */
const hasToken = (s: string) => /[\p{L}\p{N}]/u.test(s);

/**
 * Reads the query language: plain words (all must match), `"exact phrase"`, `prefix*`,
 * `-excluded` (word or phrase). Anything else is words: operators, brackets, colons and quotes
 * that do not pair are just characters, never FTS syntax.
 */
export function parseQuery(input: string): QueryTerm[] {
  // Control characters are separators; a NUL would even end the FTS5 expression early (its parser reads C strings).
  const q = input.replace(/[\u0000-\u001f\u007f]/g, ' ');
  const terms: QueryTerm[] = [];
  let i = 0;
  while (i < q.length) {
    if (/\s/u.test(q[i])) {
      i++;
      continue;
    }
    let exclude = false;
    if (q[i] === '-' && i + 1 < q.length && !/\s/u.test(q[i + 1])) {
      exclude = true;
      i++;
    }
    if (q[i] === '"') {
      const end = q.indexOf('"', i + 1);
      const body = end < 0 ? q.slice(i + 1) : q.slice(i + 1, end);
      i = end < 0 ? q.length : end + 1;
      let prefix = false;
      if (q[i] === '*') {
        prefix = true;
        i++;
      }
      if (hasToken(body)) terms.push({ text: body, phrase: true, prefix: prefix && lastTokenLength(body) >= MIN_PREFIX_CHARS, exclude });
      continue;
    }
    let j = i;
    while (j < q.length && !/\s/u.test(q[j])) j++;
    let word = q.slice(i, j);
    i = j;
    let prefix = false;
    if (word.endsWith('*')) {
      word = word.replace(/\*+$/, '');
      prefix = lastTokenLength(word) >= MIN_PREFIX_CHARS;
    }
    if (hasToken(word)) terms.push({ text: word, phrase: false, prefix, exclude });
  }
  return terms;
}

/** Length of the last letters-and-digits run of `s` (what an FTS prefix would apply to). */
function lastTokenLength(s: string): number {
  const m = /[\p{L}\p{N}]+[^\p{L}\p{N}]*$/u.exec(s);
  return m ? m[0].replace(/[^\p{L}\p{N}]+$/u, '').length : 0;
}

/** An FTS5 string literal: every term is quoted, so no user input is ever read as FTS syntax. */
const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * The FTS5 MATCH expression for a query: included terms ANDed, excluded ones NOTed.
 * bad_request when nothing is left to match (empty, only punctuation, only exclusions) or the
 * query has more than MAX_TERMS terms.
 */
export function toMatchExpression(q: string): string {
  const terms = parseQuery(q);
  if (terms.length > MAX_TERMS) throw new AppError('bad_request', `a search query may have at most ${MAX_TERMS} terms`);
  const include = terms.filter((t) => !t.exclude);
  const exclude = terms.filter((t) => t.exclude);
  if (include.length === 0)
    throw new AppError('bad_request', 'the search query needs at least one word to match (exclusions alone match nothing)');
  const expr = (t: QueryTerm) => quote(t.text) + (t.prefix ? '*' : '');
  let match = include.map(expr).join(' AND ');
  if (exclude.length) match = `(${match})${exclude.map((t) => ` NOT ${expr(t)}`).join('')}`;
  return match;
}
