import { expect } from 'vitest';

/** Asserts a problem+json answer with this status and code (and every required field); returns its body. */
export async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, any>> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return expectProblemBody(JSON.parse(text), status, code);
}

/**
 * Asserts a parsed problem body: this status, this code (or one of a list), and the other
 * required fields (type, title, detail) as strings; returns it.
 */
export function expectProblemBody(body: Record<string, any>, status: number, code: string | readonly string[]): Record<string, any> {
  if (typeof code === 'string') expect(body).toMatchObject({ status, code });
  else {
    expect(body.status).toBe(status);
    expect(code).toContain(body.code);
  }
  for (const k of ['type', 'title', 'detail']) expect(typeof body[k]).toBe('string');
  return body;
}

/**
 * Asserts a raw HTTP/1.1 answer (as `rawExchange` returns it) is a problem+json with this status
 * (any 4xx for `'4xx'`, the body's status then matching the status line) and code; returns its body.
 */
export function expectRawProblem(answer: string, status: number | '4xx', code: string | readonly string[]): Record<string, any> {
  const cut = answer.indexOf('\r\n\r\n');
  const head = cut < 0 ? answer : answer.slice(0, cut);
  const line = /^HTTP\/1\.1 (\d{3}) /.exec(head);
  expect(line, head).not.toBeNull();
  const actual = Number(line![1]);
  if (status === '4xx') {
    expect(actual, head).toBeGreaterThanOrEqual(400);
    expect(actual, head).toBeLessThan(500);
  } else expect(actual, head).toBe(status);
  expect(head.toLowerCase()).toContain('content-type: application/problem+json');
  return expectProblemBody(JSON.parse(answer.slice(cut + 4)), actual, code);
}
