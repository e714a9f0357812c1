import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';
import type { MinRate } from '../streams.js';
import { hashToken, tokenMatches } from '../sources/tokens.js';

import type { Reader } from '../access.js';
import type { SourceRow } from '../sources/repo.js';

export type Role = Reader;
export type AppEnv = {
  Variables: {
    role: Role;
    /** Kheish's problem `domain` for errors of this request (`observation_ingress` on upload routes). */
    problemDomain?: string;
    /** Set by `uploadAdmission`: the authenticated source and the body's kind. */
    upload?: { source: SourceRow; kind: 'json' | 'multipart' };
    /** The minimum pace every request body must keep (set for all routes in `createApp`). */
    bodyRate: MinRate;
  };
};

/** The bearer token of a request, if it sent one. */
export function bearerToken(header: string | undefined | null): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export interface AdminAuthOptions {
  adminToken?: string;
  readonlyToken?: string;
}

/**
 * Admin-route auth. `access: 'read'` also admits the read-only token; `'write'` answers it with
 * forbidden. Without a configured admin token (loopback-only daemons) every caller is admin.
 */
export function adminAuth(opts: AdminAuthOptions) {
  const admin = opts.adminToken ? hashToken(opts.adminToken) : undefined;
  const readonly = opts.readonlyToken ? hashToken(opts.readonlyToken) : undefined;
  return (access: 'read' | 'write'): MiddlewareHandler<AppEnv> =>
    async (c, next) => {
      if (!admin) {
        c.set('role', 'admin');
        return next();
      }
      const token = bearerToken(c.req.header('authorization')) ?? '';
      const isAdmin = tokenMatches(token, admin);
      const isReader = tokenMatches(token, readonly);
      if (isAdmin) c.set('role', 'admin');
      else if (isReader && access === 'read') c.set('role', 'readonly');
      else if (isReader) throw new AppError('forbidden', 'the read-only token cannot change anything');
      else throw new AppError('unauthorized', 'missing or invalid admin token');
      return next();
    };
}
