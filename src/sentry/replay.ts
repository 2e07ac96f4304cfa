/**
 * The replay guard for signatures: a (keyid, nonce) pair is accepted once
 * while its `created` is inside the skew window. In memory for speed, bounded,
 * and seeded at start from the nonces the vault made durable, so a nonce
 * accepted before a crash is still refused after it.
 *
 * A node taking 2,000 signed requests/s holds ~600k live nonces (rate ×
 * max_skew_s). As a Map of strings that was ~97 MB of heap plus a 40 ms walk
 * of the whole map every 10 s to prune it. Here each nonce is 20 bytes in
 * typed arrays — 128 bits of SHA-256 of the key and its expiry in seconds —
 * in one open-addressing table (linear probing): 27–40 bytes per live nonce,
 * no per-entry objects for the GC, and expired slots are reused by later
 * inserts instead of being swept. A rebuild (which also drops what expired)
 * runs only when the table fills. A 128-bit collision would refuse a fresh
 * nonce as a replay (fail closed), never accept a replayed one.
 */
import { sha256 } from '../runtime/crypto.ts';

export interface ReplayStoreOptions {
  /** Most live nonces held; past it new signatures are refused (fail closed) until old ones expire. */
  maxEntries?: number;
}

const MIN_SLOTS = 1024;
/** Rebuild when this share of the slots is used (live or expired); a rebuilt table is at most half full. */
const MAX_LOAD = 0.75;
const REBUILD_SPARE = 2;

export class ReplayStore {
  readonly #max: number;
  /** 4 × u32 of key hash per slot. */
  #hash = new Uint32Array(MIN_SLOTS * 4);
  /** Expiry per slot, in seconds since the epoch rounded up; 0 = empty. */
  #until = new Uint32Array(MIN_SLOTS);
  /** Slots not empty: live nonces and expired ones not reused yet. */
  #used = 0;
  /** When the last rebuild dropped the expired nonces (seconds). */
  #purgedAt = 0;

  constructor(options: ReplayStoreOptions = {}) {
    this.#max = options.maxEntries ?? 2_000_000;
  }

  static key(keyid: string, nonce: string): string {
    return `${keyid}\n${nonce}`;
  }

  load(records: Iterable<{ key: string; expires: number }>, now = Date.now()): void {
    for (const r of records) if (r.expires >= now) this.remember(r.key, r.expires, now);
  }

  /** Nonces held, live or expired but not yet reclaimed (exact right after a rebuild). */
  get size(): number {
    return this.#used;
  }

  /** Slots in the table (memory is 20 bytes each). */
  get capacity(): number {
    return this.#until.length;
  }

  /**
   * Remembers key until `expires` (ms). Returns 'ok', 'replay' when it is still
   * remembered, or 'full' when the store is at capacity.
   */
  remember(key: string, expires: number, now: number): 'ok' | 'replay' | 'full' {
    const d = sha256(key);
    const h0 = word(d, 0), h1 = word(d, 4), h2 = word(d, 8), h3 = word(d, 12);
    const nowS = Math.ceil(now / 1000);
    const found = this.#find(h0, h1, h2, h3, nowS);
    if (found === -1) return 'replay';
    let slot = found;
    if (this.#until[slot] === 0 && this.#used >= this.#max) {
      // Full of slots: drop what expired (at most once a second: nothing
      // expires in between), and refuse only if the live ones fill it.
      if (this.#purgedAt !== nowS) this.#rebuild(nowS);
      if (this.#used >= this.#max) return 'full';
      slot = this.#find(h0, h1, h2, h3, nowS);
    }
    if (this.#until[slot] === 0) this.#used++;
    this.#put(slot, h0, h1, h2, h3, Math.min(0xffffffff, Math.max(1, Math.ceil(expires / 1000))));
    if (this.#used > this.#until.length * MAX_LOAD) this.#rebuild(nowS);
    return 'ok';
  }

  /**
   * -1 when the key is live; else the slot to write it to: its own expired
   * slot, the first expired slot on its probe path, or the empty slot ending it.
   */
  #find(h0: number, h1: number, h2: number, h3: number, nowS: number): number {
    const hash = this.#hash;
    const until = this.#until;
    const slots = until.length;
    let reuse = -1;
    for (let i = h0 % slots; ; i = i + 1 === slots ? 0 : i + 1) {
      const u = until[i]!;
      if (u === 0) return reuse >= 0 ? reuse : i;
      const live = u >= nowS;
      if (hash[4 * i] === h0 && hash[4 * i + 1] === h1 && hash[4 * i + 2] === h2 && hash[4 * i + 3] === h3) return live ? -1 : i;
      if (!live && reuse < 0) reuse = i;
    }
  }

  #put(slot: number, h0: number, h1: number, h2: number, h3: number, untilS: number): void {
    this.#hash[4 * slot] = h0;
    this.#hash[4 * slot + 1] = h1;
    this.#hash[4 * slot + 2] = h2;
    this.#hash[4 * slot + 3] = h3;
    this.#until[slot] = untilS;
  }

  /** Re-inserts the live nonces into a table with room to spare; expired ones are gone. */
  #rebuild(nowS: number): void {
    const oldHash = this.#hash;
    const oldUntil = this.#until;
    let live = 0;
    for (let i = 0; i < oldUntil.length; i++) if (oldUntil[i]! >= nowS) live++;
    const slots = Math.max(MIN_SLOTS, Math.ceil(live * REBUILD_SPARE));
    this.#hash = new Uint32Array(slots * 4);
    this.#until = new Uint32Array(slots);
    this.#used = live;
    this.#purgedAt = nowS;
    for (let i = 0; i < oldUntil.length; i++) {
      const u = oldUntil[i]!;
      if (u < nowS) continue;
      const h0 = oldHash[4 * i]!;
      let j = h0 % slots;
      while (this.#until[j] !== 0) j = j + 1 === slots ? 0 : j + 1;
      this.#put(j, h0, oldHash[4 * i + 1]!, oldHash[4 * i + 2]!, oldHash[4 * i + 3]!, u);
    }
  }
}

function word(d: Uint8Array, at: number): number {
  return (d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16) | (d[at + 3]! << 24)) >>> 0;
}
