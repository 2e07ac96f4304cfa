/**
 * Token buckets per key (client IP, identity): `rate` tokens per second, a
 * burst of one second's worth. Bounded: idle buckets are dropped.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #max: number;

  constructor(ratePerSecond: number, maxKeys = 100_000) {
    this.#rate = ratePerSecond;
    this.#max = maxKeys;
  }

  /** 0 when allowed; otherwise the seconds to wait (for Retry-After). */
  take(key: string, now = Date.now()): number {
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.#max) this.#evict(now);
      b = { tokens: this.#rate, at: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.#rate, b.tokens + ((now - b.at) / 1000) * this.#rate);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#rate));
  }

  #evict(now: number): void {
    // Full buckets are indistinguishable from new ones: drop those first.
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#rate >= this.#rate) this.#buckets.delete(k);
    }
    if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
