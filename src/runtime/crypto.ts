/**
 * One-off hashing and randomness. node:crypto's one-shot hash beats WASM for a
 * single buffer and is available under Deno too; batches go to src/hotpath.
 */
import * as nodeCrypto from 'node:crypto';

// crypto.hash (Node ≥ 20.12) skips the Hash object: ~1.7 against ~2.5 µs for
// a 330-byte body here, three times per signed request. Where a runtime lacks
// it, createHash does the same.
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array | string, encoding: string) => Buffer | string }).hash;

export function sha256(data: Uint8Array | string): Uint8Array {
  return oneShot ? (oneShot('sha256', data, 'buffer') as Buffer) : nodeCrypto.createHash('sha256').update(data).digest();
}

export function sha256Hex(data: Uint8Array | string): string {
  return oneShot ? (oneShot('sha256', data, 'hex') as string) : nodeCrypto.createHash('sha256').update(data).digest('hex');
}

export function randomBytes(n: number): Uint8Array {
  return nodeCrypto.randomBytes(n);
}

/** Constant-time equality of two byte strings (false when lengths differ). */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && nodeCrypto.timingSafeEqual(a, b);
}

export { nodeCrypto };
