import { expect } from 'vitest';

/** Asserts a problem+json answer with this status and code (and every required field); returns its body. */
export async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, any>> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text);
  expect(body).toMatchObject({ status, code });
  for (const k of ['type', 'title', 'detail']) expect(typeof body[k]).toBe('string');
  return body;
}
