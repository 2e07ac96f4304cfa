/** The bounded table of recent Sentry rejections (dashboard, GET /v1/admin/rejections). */
import type { Rejection } from '../sentry/sentry.ts';

export class RejectionLog {
  readonly #rows: Rejection[] = [];
  readonly #max: number;
  readonly #listeners = new Set<(r: Rejection) => void>();
  #total = 0;

  constructor(max = 1000) {
    this.#max = max;
  }

  add(r: Rejection): void {
    this.#total++;
    this.#rows.push(r);
    if (this.#rows.length > this.#max) this.#rows.shift();
    for (const fn of this.#listeners) fn(r);
  }

  /** Newest first. */
  list(limit = 100): Rejection[] {
    return this.#rows.slice(-limit).reverse();
  }

  get total(): number {
    return this.#total;
  }

  /** Live feed; returns the unsubscribe function. */
  subscribe(fn: (r: Rejection) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}
