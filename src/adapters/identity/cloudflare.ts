/**
 * Cloudflare Access (SPEC §5.2): the `Cf-Access-Jwt-Assertion` header, an RS256
 * JWT checked by `jose` against the team's JWKS (cached, refetched on an
 * unknown kid), with aud, iss, exp and nbf. A JWKS that cannot be fetched is a
 * rejection, never a pass.
 */
import { createRemoteJWKSet, jwtVerify, errors } from 'jose';
import { SentryRejection, type Identity, type IdentityVerifier, type RequestFacts } from '../../sentry/identity.ts';

export const CF_HEADER = 'cf-access-jwt-assertion';

export interface CloudflareOptions {
  /** https://<team>.cloudflareaccess.com — also the expected `iss`. */
  teamDomain: string;
  /** The application's AUD tag. */
  aud: string;
  /** Defaults to <teamDomain>/cdn-cgi/access/certs. */
  jwksUrl?: string;
  clockToleranceS?: number;
}

export function cloudflareVerifier(options: CloudflareOptions): IdentityVerifier {
  const issuer = options.teamDomain.replace(/\/+$/, '');
  // Unknown kids refetch at most once a second (cooldown), cached keys live 10 minutes.
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl ?? `${issuer}/cdn-cgi/access/certs`), { timeoutDuration: 5000, cooldownDuration: 1000, cacheMaxAge: 10 * 60_000 });
  return {
    method: 'cloudflare',
    applies: (f) => f.request.headers.has(CF_HEADER),
    async verify(f: RequestFacts): Promise<Identity> {
      const token = f.request.headers.get(CF_HEADER) ?? '';
      try {
        const { payload } = await jwtVerify(token, jwks, {
          algorithms: ['RS256'],
          audience: options.aud,
          issuer,
          clockTolerance: options.clockToleranceS ?? 30,
          requiredClaims: ['exp', 'iat'],
        });
        const who = typeof payload.email === 'string' && payload.email ? payload.email : payload.sub;
        if (!who) throw new SentryRejection('JWT_INVALID', 401, 'the Access token names no email or sub');
        return { subject: `cf:${who}`, method: 'cloudflare', evidence: new TextEncoder().encode(token) };
      } catch (e) {
        if (e instanceof SentryRejection) throw e;
        throw rejection(e);
      }
    },
  };
}

function rejection(e: unknown): SentryRejection {
  if (e instanceof errors.JWTExpired) return new SentryRejection('JWT_EXPIRED', 401, 'the Access token has expired');
  if (e instanceof errors.JWTClaimValidationFailed) {
    const claim = e.claim;
    if (claim === 'aud') return new SentryRejection('JWT_AUDIENCE', 401, 'the Access token is for another application (aud)');
    if (claim === 'iss') return new SentryRejection('JWT_ISSUER', 401, 'the Access token is from another team (iss)');
    if (claim === 'nbf') return new SentryRejection('JWT_NOT_YET_VALID', 401, 'the Access token is not valid yet (nbf)');
    return new SentryRejection('JWT_INVALID', 401, `the Access token fails the ${claim} check`);
  }
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JOSEError && e.code === 'ERR_JOSE_GENERIC' || (e instanceof TypeError)) {
    return new SentryRejection('JWKS_UNAVAILABLE', 401, 'the Access signing keys cannot be fetched; rejecting (fail closed)');
  }
  if (e instanceof errors.JWKSNoMatchingKey) return new SentryRejection('JWT_UNKNOWN_KEY', 401, 'no Access signing key matches the token');
  if (e instanceof errors.JWSSignatureVerificationFailed) return new SentryRejection('JWT_SIGNATURE_INVALID', 401, 'the Access token signature does not verify');
  if (e instanceof errors.JOSEAlgNotAllowed) return new SentryRejection('JWT_INVALID', 401, 'the Access token must be RS256');
  return new SentryRejection('JWT_INVALID', 401, 'the Access token is malformed');
}
