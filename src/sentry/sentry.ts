/**
 * The Sentry: fail-closed identity for every write and private route. Exactly
 * one configured method must resolve the request; none, or a failed one, or two
 * at once, is a rejection before any work is done.
 */
import type { MiddlewareHandler } from 'hono';
import { SentryRejection, type Identity, type IdentityVerifier, type RequestFacts } from './identity.ts';

export interface Rejection {
  time: string;
  route: string;
  code: string;
  clientIp: string;
  claimed: string | null;
}

export interface SentryOptions {
  verifiers: readonly IdentityVerifier[];
  /** Client address and loopback-ness, as the ingress mode believes them. */
  peer: (c: Parameters<MiddlewareHandler>[0]) => { clientIp: string; loopback: boolean };
  onRejection?: (r: Rejection) => void;
  reject: (c: Parameters<MiddlewareHandler>[0], r: SentryRejection) => Response;
}

export type SentryVariables = { identity: Identity; body: Uint8Array };

export async function resolveIdentity(facts: RequestFacts, verifiers: readonly IdentityVerifier[]): Promise<Identity> {
  const applicable = verifiers.filter((v) => v.applies(facts));
  if (applicable.length === 0) throw new SentryRejection('UNAUTHENTICATED', 401, 'this route needs an identity: sign the request (RFC 9421) or use a configured method');
  if (applicable.length > 1) throw new SentryRejection('IDENTITY_AMBIGUOUS', 401, `the request carries credentials for ${applicable.map((v) => v.method).join(' and ')}; send exactly one`);
  return applicable[0]!.verify(facts);
}

/** @example app.use('/v1/events', sentry(options)) */
export const sentry = (options: SentryOptions): MiddlewareHandler<{ Variables: SentryVariables }> => {
  return async function sentry(c, next) {
    const { clientIp, loopback } = options.peer(c);
    const body = c.get('body') ?? new Uint8Array(0);
    try {
      const identity = await resolveIdentity({ request: c.req.raw, body, clientIp, loopback }, options.verifiers);
      c.set('identity', identity);
    } catch (e) {
      if (!(e instanceof SentryRejection)) throw e;
      options.onRejection?.({ time: new Date().toISOString(), route: `${c.req.method} ${c.req.path}`, code: e.code, clientIp, claimed: e.claimed ?? null });
      return options.reject(c, e);
    }
    await next();
  };
};
