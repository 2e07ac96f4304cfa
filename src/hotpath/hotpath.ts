/**
 * The WebAssembly hot path (compiled from wasm/assembly): batch RFC 6962 leaf
 * hashing, Merkle levels and roots (4-lane SIMD SHA-256), and exact u64 splits.
 *
 * The module is instantiated once, synchronously, from bytes embedded in the
 * build. Each call lays its inputs out in one scratch region above heapBase and
 * copies results out before returning, so views never outlive a memory growth.
 */
import { hotpathWasmBase64 } from './wasm-bytes.generated.ts';

interface HotpathExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  sha256(data: number, len: number, out: number): void;
  hashLeaves(data: number, offsets: number, n: number, out: number, simd: number): void;
  hashPairs(inp: number, count: number, out: number, simd: number): void;
  merkleRoot(nodes: number, n: number, out: number, simd: number): void;
  splitAmounts(amounts: number, n: number, c: number, p: number, out: number): number;
}

const PAGE = 65536;

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

let instance: HotpathExports | undefined;
let base = 0;

function wasm(): HotpathExports {
  if (!instance) {
    const module = new WebAssembly.Module(decodeBase64(hotpathWasmBase64) as BufferSource);
    instance = new WebAssembly.Instance(module, {}).exports as unknown as HotpathExports;
    base = instance.heapBase();
  }
  return instance;
}

/** Makes sure `bytes` of scratch exist above heapBase; returns the scratch start. */
function scratch(bytes: number): number {
  const w = wasm();
  const need = base + bytes;
  const have = w.memory.buffer.byteLength;
  if (need > have) w.memory.grow(Math.ceil((need - have) / PAGE));
  return base;
}

function heap(): Uint8Array {
  return new Uint8Array(wasm().memory.buffer);
}

/** True once the module has been compiled and answers (for /readyz). */
export function hotpathReady(): boolean {
  try {
    return wasm().heapBase() > 0;
  } catch {
    return false;
  }
}

/** SHA-256 of one buffer (prefer node:crypto for large one-off hashes; NOTES.md). */
export function sha256(data: Uint8Array): Uint8Array {
  const at = scratch(data.length + 32);
  const out = at + data.length;
  heap().set(data, at);
  wasm().sha256(at, data.length, out);
  return heap().slice(out, out + 32);
}

const encoder = new TextEncoder();

/** RFC 6962 leaf hashes SHA-256(0x00 ‖ entry) of every entry, n × 32 bytes; text is hashed as its UTF-8. */
export function leafHashes(entries: readonly (Uint8Array | string)[], simd = true): Uint8Array {
  const n = entries.length;
  // Strings are UTF-8 encoded straight into WASM memory (at most 3 bytes per UTF-16 unit).
  let room = 0;
  for (const e of entries) room += typeof e === 'string' ? e.length * 3 : e.length;
  const offsetsBytes = (n + 1) * 4;
  const dataAt = scratch(room + offsetsBytes + n * 32 + 8);
  const offsetsAt = (dataAt + room + 3) & ~3;
  const outAt = offsetsAt + offsetsBytes;
  const mem = heap();
  const offsets = new Uint32Array(mem.buffer, offsetsAt, n + 1);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = pos;
    const e = entries[i]!;
    if (typeof e === 'string') {
      pos += encoder.encodeInto(e, mem.subarray(dataAt + pos, dataAt + pos + e.length * 3)).written;
    } else {
      mem.set(e, dataAt + pos);
      pos += e.length;
    }
  }
  offsets[n] = pos;
  wasm().hashLeaves(dataAt, offsetsAt, n, outAt, simd ? 1 : 0);
  return heap().slice(outAt, outAt + n * 32);
}

/** Parents of `count` adjacent pairs held as left‖right in `level` (64 bytes each). */
export function hashPairs(level: Uint8Array, count: number, simd = true): Uint8Array {
  const at = scratch(count * 64);
  heap().set(level.subarray(0, count * 64), at);
  wasm().hashPairs(at, count, at, simd ? 1 : 0);
  return heap().slice(at, at + count * 32);
}

/** RFC 6962 root over n node or leaf hashes (n ≥ 1), 32 bytes. */
export function merkleRoot(hashes: Uint8Array, n: number, simd = true): Uint8Array {
  if (n < 1) throw new RangeError('merkleRoot needs at least one hash');
  const at = scratch(n * 32 + 32);
  heap().set(hashes.subarray(0, n * 32), at);
  const out = at + n * 32;
  wasm().merkleRoot(at, n, out, simd ? 1 : 0);
  return heap().slice(out, out + 32);
}

export interface Split {
  creator: bigint;
  pool: bigint;
  fee: bigint;
}

export class SplitInvariantError extends Error {
  constructor(readonly index: number, readonly amount: bigint) {
    super(`split invariant violated for amount ${amount} at batch index ${index}`);
  }
}

/**
 * Splits every amount (1 ≤ a < 2^64) by basis points creator/pool, fee taking
 * the dust, in one WASM call for the whole batch (a call per amount would cross
 * BigInts one at a time and halve the speed; NOTES.md).
 */
export function splitAmounts(amounts: readonly bigint[], creatorBp: number, poolBp: number): Split[] {
  const n = amounts.length;
  const at = (scratch(n * 32 + 8) + 7) & ~7;
  const inView = new BigUint64Array(wasm().memory.buffer, at, n);
  for (let i = 0; i < n; i++) inView[i] = amounts[i]!;
  const outAt = at + n * 8;
  const bad = wasm().splitAmounts(at, n, creatorBp, poolBp, outAt);
  if (bad !== 0) throw new SplitInvariantError(bad - 1, amounts[bad - 1]!);
  const outView = new BigUint64Array(wasm().memory.buffer, outAt, n * 3);
  const splits: Split[] = new Array(n);
  for (let i = 0; i < n; i++) {
    splits[i] = { creator: outView[i * 3]!, pool: outView[i * 3 + 1]!, fee: outView[i * 3 + 2]! };
  }
  return splits;
}
