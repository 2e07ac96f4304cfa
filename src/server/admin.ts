/**
 * The admin listener (loopback by default): everything on it needs the bearer
 * token from admin.token, compared in constant time.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { sha256, timingSafeEqual } from '../runtime/crypto.ts';
import { problem } from './problem.ts';

/** Bearer-token guard; the hashes make the comparison length-independent. */
export const adminAuth = (token: string): MiddlewareHandler => {
  const expected = sha256(token);
  return async function adminAuth(c, next) {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m || !timingSafeEqual(sha256(m[1]!), expected)) {
      return problem(c, 'UNAUTHENTICATED', 'the admin API needs "Authorization: Bearer <admin.token>"');
    }
    await next();
  };
};

export interface AdminOptions {
  token: string;
  status: () => Record<string, unknown>;
}

export function createAdminApp(options: AdminOptions): Hono {
  const app = new Hono({ strict: true });
  app.use('*', secureHeaders());
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.use('*', adminAuth(options.token));
  app.get('/v1/admin/status', (c) => c.json(options.status()));
  app.notFound((c) => problem(c, 'NOT_FOUND'));
  return app;
}
