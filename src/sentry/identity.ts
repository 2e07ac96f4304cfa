/**
 * The identity seam: each method (device signatures, Cloudflare Access,
 * Telegram, dev) is one verifier; the Sentry asks them all and accepts a
 * request only when exactly one resolves it.
 */
export type IdentityMethod = 'signature' | 'cloudflare' | 'telegram' | 'dev';

export interface Identity {
  /** The authenticated subject, e.g. did:key:z6Mk…, cf:alice@example.com, tg:42, dev:alice. */
  subject: string;
  method: IdentityMethod;
  /** What proves it (signature base + signature, JWT, initData …); its SHA-256 goes into the ledger entry. */
  evidence: Uint8Array;
  /** A signature nonce the node must make durable before it answers. */
  nonce?: { key: string; expires: number };
}

export interface RequestFacts {
  request: Request;
  /** The raw body (empty for GET). */
  body: Uint8Array;
  /** The client address as the ingress mode believes it. */
  clientIp: string;
  /** The socket peer is on loopback (dev identity is only ever accepted then). */
  loopback: boolean;
}

/** A rejection with a stable code; the Sentry answers it as problem+json. */
export class SentryRejection extends Error {
  constructor(readonly code: string, readonly status: 401 | 403 | 429, detail: string, readonly claimed?: string) {
    super(detail);
    this.name = 'SentryRejection';
  }
}

export interface IdentityVerifier {
  readonly method: IdentityMethod;
  /** True when the request carries credentials of this kind at all. */
  applies(facts: RequestFacts): boolean;
  /** Verifies them: an Identity, or a SentryRejection thrown. */
  verify(facts: RequestFacts): Identity | Promise<Identity>;
}
