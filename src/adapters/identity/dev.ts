/**
 * Dev identity (SPEC §5.4): `X-Nexus-Dev-Identity: <name>` → `dev:<name>`,
 * only when the node runs with --dev and only from a loopback peer.
 */
import { sha256Hex } from '../../runtime/crypto.ts';
import { SentryRejection, type Identity, type IdentityVerifier, type RequestFacts } from '../../sentry/identity.ts';

export const DEV_HEADER = 'x-nexus-dev-identity';
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const encoder = new TextEncoder();

export function devIdentityVerifier(): IdentityVerifier {
  return {
    method: 'dev',
    applies: (f) => f.request.headers.has(DEV_HEADER),
    verify(f: RequestFacts): Identity {
      const name = f.request.headers.get(DEV_HEADER) ?? '';
      if (!f.loopback) throw new SentryRejection('DEV_IDENTITY_REMOTE', 401, 'the dev identity is accepted from loopback only', `dev:${name}`);
      if (!NAME.test(name)) throw new SentryRejection('DEV_IDENTITY_INVALID', 401, 'the dev identity must be 1 to 64 of [A-Za-z0-9._-]', `dev:${name}`);
      const subject = `dev:${name}`;
      // Evidence binds the claimed name to this exact body.
      return { subject, method: 'dev', evidence: encoder.encode(`${subject}\n${sha256Hex(f.body)}`) };
    },
  };
}
