import { statusOf, type ErrorCode } from '../errors.js';
import { problemBody } from './problem.js';

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * The raw HTTP answer to a request Node's parser refused before any route could run (the
 * server's `clientError` event): problem+json with a stable code, then the connection closes.
 * Huge headers or a huge URL (over Node's header limit) are headers_too_large (431), a request
 * too slow to arrive is request_timeout (408), anything else unparsable is bad_request (400).
 */
export function clientErrorResponse(nodeCode: string | undefined): string {
  const [code, detail] = classify(nodeCode);
  const status = statusOf(code);
  const body = JSON.stringify(problemBody(code, detail));
  return (
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: application/problem+json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

function classify(nodeCode: string | undefined): [ErrorCode, string] {
  if (nodeCode === 'HPE_HEADER_OVERFLOW')
    return ['headers_too_large', 'the request line and headers exceed the server limit; send a shorter URL or fewer headers'];
  if (nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT') return ['request_timeout', 'the request did not arrive in time'];
  return ['bad_request', 'the HTTP request could not be parsed'];
}
