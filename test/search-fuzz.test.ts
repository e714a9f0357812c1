import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.js';
import { parseQuery, toMatchExpression } from '../src/search/query.js';
import { makeSnippet } from '../src/search/snippet.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { upload } from './helpers/derivations.js';
import { createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({});
  const t = await createSource(d, { source_id: 'fz', display_name: 'F', kind: 'screen_snapshot' });
  const texts = ['alpha beta gamma', 'NEAR AND OR NOT delta', 'épée naïve café 東京 данные', 'x1 y2 "quoted" star* -minus (paren) col:on'];
  for (const [i, text] of texts.entries())
    await upload(d, 'fz', t, makePng(2, 2, 900 + i), `fz-${i}`, 'image/png', { canonical_text: text });
});
afterAll(() => d?.close());

/** Pieces of FTS5 syntax and ordinary words, glued into queries a fuzzer would not find alone. */
const piece = fc.constantFrom(
  '"',
  '""',
  '*',
  '-',
  '--',
  '(',
  ')',
  '^',
  '+',
  ':',
  '{',
  '}',
  ',',
  'NEAR',
  'NEAR(',
  'AND',
  'OR',
  'NOT',
  'body:',
  'rank',
  'bm25(',
  'alpha',
  'beta',
  'delta',
  'café',
  '東京',
  ' ',
  '  ',
  '\t',
  '\n',
  '\u0000',
  '\\',
  "'",
  '%',
  '_',
  '\u200b',
  '\u0301',
  '🙂',
  'a*',
  '-"x y"',
);
const oddQuery = fc.oneof(
  fc.array(piece, { maxLength: 12 }).map((p) => p.join('')),
  fc.array(piece, { maxLength: 8 }).map((p) => p.join(' ')),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

describe('search query language', () => {
  it('quotes every term: no query string reaches FTS5 as syntax', () => {
    fc.assert(
      fc.property(oddQuery, (q) => {
        const terms = parseQuery(q);
        for (const t of terms) expect(t.text).toMatch(/[\p{L}\p{N}]/u);
        let expr: string | undefined;
        try {
          expr = toMatchExpression(q);
        } catch (e) {
          expect(e).toBeInstanceOf(AppError);
          expect((e as AppError).code).toBe('bad_request');
          return;
        }
        // Outside the quoted strings only our own operators, brackets and prefix stars remain.
        const outside = expr.replace(/"(?:[^"]|"")*"/g, '');
        expect(outside).toMatch(/^[()*\s]*(?:(?:AND|NOT)[()*\s]*)*$/);
      }),
      { numRuns: 3000 },
    );
  });

  it('never fails inside SQLite: every query gives hits or a bad_request (in process)', () => {
    const search = d.daemon.services.search;
    fc.assert(
      fc.property(oddQuery, (q) => {
        if (q.trim() === '') return;
        try {
          const page = search.search({ q }, 'admin').fetchPage(undefined, 5);
          expect(Array.isArray(page.items)).toBe(true);
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(AppError);
          expect((e as AppError).code).toBe('bad_request');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('never answers 500 over HTTP', async () => {
    await fc.assert(
      fc.asyncProperty(oddQuery, async (q) => {
        const r = await d.req(`/v1/search?q=${encodeURIComponent(q)}&page=true`);
        const body = await r.text();
        expect([200, 400], body).toContain(r.status);
        if (r.status === 400) expect(JSON.parse(body).code).toMatch(/^(bad_request|validation_failed)$/);
      }),
      { numRuns: 300 },
    );
  });
});

describe('snippets', () => {
  const snip = (text: string, q: string, n = 16) => makeSnippet(text, parseQuery(q), '«', '»', n);

  it('marks words, whole phrases and prefixes, folding case and accents, and cuts with …', () => {
    expect(snip('The Café opens at nine', 'cafe')).toBe('The «Café» opens at nine');
    expect(snip('plan the query plan now', '"query plan"')).toBe('plan the «query» «plan» now');
    expect(snip('documentation docs doc', 'docu*')).toBe('«documentation» docs doc');
    const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    expect(snip(long, 'w20', 6)).toBe('…w17 w18 w19 «w20» w21 w22…');
    expect(snip('nothing here', 'absent')).toBe('nothing here');
  });

  it('is the text itself once the marks and cuts are removed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), oddQuery, (text, q) => {
        const s = snip(text, q).replace(/[«»]/g, '');
        const core = s.replace(/^…/, '').replace(/…$/, '');
        expect(text).toContain(core);
      }),
      { numRuns: 1000 },
    );
  });
});
