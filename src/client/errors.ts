/** One field problem of a `validation_failed` answer. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** An `application/problem+json` body as observd (and Kheish) write it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  domain?: string;
  errors?: FieldProblem[];
}

/**
 * A refused request: the daemon's problem+json answer (`code` is the stable snake_case code,
 * `status` the HTTP status), or for a network failure code `network_error` and status 0.
 */
export class ObservdError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors?: FieldProblem[];
  readonly problem?: Problem;
  /** From a `Retry-After` header, when the daemon sent one. */
  readonly retryAfterMs?: number;

  constructor(status: number, problem: Problem | undefined, message: string, retryAfterMs?: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ObservdError';
    this.status = status;
    this.code = problem?.code ?? (status === 0 ? 'network_error' : `http_${status}`);
    this.detail = problem?.detail ?? message;
    this.errors = problem?.errors;
    this.problem = problem;
    this.retryAfterMs = retryAfterMs;
  }

  /** Builds the error for a non-2xx response (reads its body). */
  static async fromResponse(res: Response): Promise<ObservdError> {
    const text = await res.text().catch(() => '');
    let problem: Problem | undefined;
    try {
      const body = JSON.parse(text);
      if (body && typeof body === 'object' && typeof body.code === 'string') problem = body as Problem;
    } catch {
      /* not JSON */
    }
    const retry = res.headers.get('retry-after');
    const retryAfterMs = retry && /^\d+$/.test(retry) ? Number(retry) * 1000 : undefined;
    const msg = problem ? `${res.status} ${problem.code}: ${problem.detail}` : `${res.status} ${text.slice(0, 200)}`;
    return new ObservdError(res.status, problem, msg, retryAfterMs);
  }
}

/** True for a failure worth retrying: network, 408, 425, 429, 502–504, an idempotent request still in flight. */
export function isRetryable(e: unknown): boolean {
  if (!(e instanceof ObservdError)) return false;
  return e.status === 0 || [408, 425, 429, 502, 503, 504].includes(e.status) || e.code === 'idempotency_in_flight';
}
