/**
 * Device signatures (SPEC §5.1): RFC 9421 over ("@method" "@path"
 * "content-digest") with created, nonce, keyid and alg; RFC 9530
 * Content-Digest (sha-256) always present and checked against the body.
 * Checks run cheapest first; the nonce is claimed only after the signature
 * verifies, so forged requests cannot burn a device's nonces.
 */
import { sha256, timingSafeEqual } from '../../runtime/crypto.ts';
import { ReplayStore } from '../../sentry/replay.ts';
import { SentryRejection, type Identity, type IdentityVerifier, type RequestFacts } from '../../sentry/identity.ts';
import { parseSignatureHeaders, signatureBase, contentDigestMember, SignatureFormatError, type MessageView } from './rfc9421.ts';
import { parseDid, verifyDeviceSignature, DidError, type DeviceKey, type SignatureAlg } from './keys.ts';

export const REQUIRED_COMPONENTS = ['@method', '@path', 'content-digest'] as const;
const utf8 = new TextEncoder();
const NONCE = /^[A-Za-z0-9+/=_.~-]{8,128}$/;
const ALGS = new Set<SignatureAlg>(['ed25519', 'sr25519', 'secp256k1-keccak']);

export interface SignatureVerifierOptions {
  enrollment: 'allowlist' | 'open';
  maxSkewS: number;
  isEnrolled: (did: string) => boolean;
  replay: ReplayStore;
  now?: () => number;
}

const reject = (code: string, detail: string, claimed?: string, status: 401 | 403 | 429 = 401) => new SentryRejection(code, status, detail, claimed);

export function signatureVerifier(options: SignatureVerifierOptions): IdentityVerifier {
  const keys = new Map<string, DeviceKey>();
  const now = options.now ?? Date.now;
  return {
    method: 'signature',
    applies: (f) => f.request.headers.has('signature-input') || f.request.headers.has('signature'),
    async verify(f: RequestFacts): Promise<Identity> {
      const h = f.request.headers;
      let parsed;
      try {
        parsed = parseSignatureHeaders(h.get('signature-input') ?? '', h.get('signature') ?? '');
      } catch (e) {
        throw reject('SIGNATURE_MALFORMED', e instanceof SignatureFormatError ? e.message : 'unreadable signature headers');
      }
      const { params, components } = parsed;
      const claimed = params.keyid;
      for (const c of REQUIRED_COMPONENTS) {
        if (!components.includes(c)) throw reject('SIGNATURE_COMPONENTS', `the signature must cover ${REQUIRED_COMPONENTS.map((x) => `"${x}"`).join(' ')}`, claimed);
      }
      if (params.created === undefined || params.nonce === undefined || params.keyid === undefined || params.alg === undefined) {
        throw reject('SIGNATURE_MALFORMED', 'the signature needs created, nonce, keyid and alg parameters', claimed);
      }
      if (!NONCE.test(params.nonce)) throw reject('SIGNATURE_MALFORMED', 'nonce must be 8 to 128 URL-safe characters', claimed);
      if (!ALGS.has(params.alg as SignatureAlg)) throw reject('ALG_UNSUPPORTED', `alg must be one of ${[...ALGS].join(', ')}`, claimed);
      const nowMs = now();
      const skew = options.maxSkewS;
      if (Math.abs(nowMs / 1000 - params.created) > skew) throw reject('SIGNATURE_STALE', `created is more than ${skew} s from this node's clock`, claimed);
      if (params.expires !== undefined && params.expires * 1000 < nowMs) throw reject('SIGNATURE_STALE', 'the signature has expired', claimed);

      const digestField = h.get('content-digest');
      if (digestField === null) throw reject('DIGEST_MISSING', 'Content-Digest (sha-256, RFC 9530) is required, also for an empty body', claimed);
      const claimedDigest = contentDigestMember(digestField, 'sha-256');
      if (!claimedDigest || !timingSafeEqual(claimedDigest, sha256(f.body))) throw reject('DIGEST_MISMATCH', 'Content-Digest sha-256 does not match the body', claimed);

      let key = keys.get(params.keyid);
      if (!key) {
        try {
          key = parseDid(params.keyid);
        } catch (e) {
          throw reject('KEYID_UNSUPPORTED', e instanceof DidError ? e.message : 'unreadable keyid', claimed);
        }
        if (keys.size > 100_000) keys.clear();
        keys.set(params.keyid, key);
      }
      if (!key.algs.includes(params.alg as SignatureAlg)) throw reject('ALG_MISMATCH', `${params.alg} does not fit ${params.keyid.split(':').slice(0, 2).join(':')}`, claimed);
      if (options.enrollment === 'allowlist' && !options.isEnrolled(params.keyid)) {
        throw reject('DEVICE_NOT_ENROLLED', 'this device is not enrolled on this node', claimed, 403);
      }

      const view: MessageView = { method: f.request.method, url: f.request.url, header: (name) => h.get(name) ?? undefined };
      let base: Uint8Array;
      try {
        base = signatureBase(components, parsed.paramsText, view);
      } catch (e) {
        throw reject('SIGNATURE_MALFORMED', (e as Error).message, claimed);
      }
      if (!(await verifyDeviceSignature(key, params.alg as SignatureAlg, base, parsed.signature))) {
        throw reject('SIGNATURE_INVALID', 'the signature does not verify for this keyid', claimed);
      }
      const nonceKey = ReplayStore.key(params.keyid, params.nonce);
      const expires = (params.created + skew) * 1000;
      const seen = options.replay.remember(nonceKey, expires, nowMs);
      if (seen === 'replay') throw reject('REPLAY', 'this (keyid, nonce) was already used', claimed);
      if (seen === 'full') throw reject('REPLAY_STORE_FULL', 'too many signatures in the window; retry later', claimed, 429);

      // Evidence: the signature base, a newline, the Signature field as sent.
      const signatureField = utf8.encode(h.get('signature') ?? '');
      const evidence = new Uint8Array(base.length + 1 + signatureField.length);
      evidence.set(base);
      evidence[base.length] = 0x0a;
      evidence.set(signatureField, base.length + 1);
      return { subject: params.keyid, method: 'signature', evidence, nonce: { key: nonceKey, expires } };
    },
  };
}
