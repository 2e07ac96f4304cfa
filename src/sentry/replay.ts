/**
 * The replay guard for signatures: a (keyid, nonce) pair is accepted once
 * while its `created` is inside the skew window. In memory for speed, bounded,
 * and seeded at start from the nonces the vault made durable, so a nonce
 * accepted before a crash is still refused after it.
 */
export interface ReplayStoreOptions {
  /** Most live nonces held; past it new signatures are refused (fail closed) until old ones expire. */
  maxEntries?: number;
}

export class ReplayStore {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  #lastPrune = 0;

  constructor(options: ReplayStoreOptions = {}) {
    this.#max = options.maxEntries ?? 2_000_000;
  }

  static key(keyid: string, nonce: string): string {
    return `${keyid}\n${nonce}`;
  }

  load(records: Iterable<{ key: string; expires: number }>): void {
    for (const r of records) this.#seen.set(r.key, r.expires);
  }

  get size(): number {
    return this.#seen.size;
  }

  /**
   * Remembers key until `expires` (ms). Returns 'ok', 'replay' when it is still
   * remembered, or 'full' when the store is at capacity.
   */
  remember(key: string, expires: number, now: number): 'ok' | 'replay' | 'full' {
    const until = this.#seen.get(key);
    if (until !== undefined && until >= now) return 'replay';
    if (this.#seen.size >= this.#max || now - this.#lastPrune > 10_000) this.#prune(now);
    if (this.#seen.size >= this.#max) return 'full';
    this.#seen.set(key, expires);
    return 'ok';
  }

  #prune(now: number): void {
    this.#lastPrune = now;
    for (const [k, until] of this.#seen) if (until < now) this.#seen.delete(k);
  }
}
