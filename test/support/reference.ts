/**
 * Reference implementations used only by tests to cross-check the WASM hot
 * path: written straight from the definitions, with no concern for speed.
 */
import { sha256 } from '@noble/hashes/sha2.js';

export const refSha256 = (b: Uint8Array): Uint8Array => sha256(b);

export function refLeafHash(entry: Uint8Array): Uint8Array {
  return sha256(concat(new Uint8Array([0]), entry));
}

export function refNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concat(new Uint8Array([1]), left, right));
}

/** RFC 6962 §2.1 MTH over leaf hashes: split at the largest power of two below n. */
export function refRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return refNodeHash(refRoot(leaves.slice(0, k)), refRoot(leaves.slice(k)));
}

/** The split by its definition: floor(a × bp / 10000) in unbounded integers; the fee takes the rest. */
export function refSplit(amount: bigint, creatorBp: number, poolBp: number) {
  const creator = (amount * BigInt(creatorBp)) / 10000n;
  const pool = (amount * BigInt(poolBp)) / 10000n;
  return { creator, pool, fee: amount - creator - pool };
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
