import type { QueryTerm } from './query.js';

/** Case- and accent-folded, as the index's tokenizer (unicode61, remove_diacritics 2) folds words. */
const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
const TOKEN = /[\p{L}\p{N}\p{M}]+/gu;
const tokensOf = (s: string) => (s.match(TOKEN) ?? []).map(fold).filter(Boolean);

/**
 * A short excerpt of `text` around the first match of the query's included terms, matched words
 * between `open` and `close`, `…` where text was cut. Computed here from the stored text rather
 * than by FTS5's snippet(), which would run the full-text query again for every hit.
 */
export function makeSnippet(text: string, terms: QueryTerm[], open: string, close: string, maxTokens: number): string {
  const spans: Array<{ start: number; end: number; norm: string }> = [];
  for (const m of text.matchAll(TOKEN)) spans.push({ start: m.index, end: m.index + m[0].length, norm: fold(m[0]) });
  const marked = new Array<boolean>(spans.length).fill(false);
  for (const t of terms) {
    if (t.exclude) continue;
    const want = tokensOf(t.text);
    if (want.length === 0) continue;
    for (let i = 0; i + want.length <= spans.length; i++) {
      let ok = true;
      for (let k = 0; k < want.length && ok; k++) {
        const last = k === want.length - 1;
        ok = t.prefix && last ? spans[i + k].norm.startsWith(want[k]) : spans[i + k].norm === want[k];
      }
      if (ok) for (let k = 0; k < want.length; k++) marked[i + k] = true;
    }
  }
  if (spans.length === 0) return '';
  const first = Math.max(0, marked.indexOf(true));
  const from = Math.max(0, Math.min(first - 3, spans.length - maxTokens));
  const to = Math.min(spans.length, from + maxTokens);
  let out = from > 0 ? '…' : '';
  let at = spans[from].start;
  for (let i = from; i < to; i++) {
    const s = spans[i];
    out += text.slice(at, s.start);
    out += marked[i] ? open + text.slice(s.start, s.end) + close : text.slice(s.start, s.end);
    at = s.end;
  }
  return out + (to < spans.length ? '…' : '');
}
