/**
 * The Anchorer: one durable state machine per (checkpoint size, chain) in the
 * vault's `anchors` table — queued → submitted → confirmed | failed → retried
 * with backoff — driven by a timer, off the ingest path. The newest checkpoint
 * is queued for every adapter at most once per interval; a chain that is down
 * only delays its own rows, and its backlog anchors when it returns.
 */
import type { Statement } from '../../vault/sqlite.ts';
import type { Vault } from '../../vault/vault.ts';
import type { TransparencyLog } from '../../log/log.ts';
import type { AnchorReceipt } from '../../log/verify.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { AnchorAdapter, AnchorReceiptRow, CheckpointRef } from './adapter.ts';

export interface AnchorerOptions {
  vault: Vault;
  log: TransparencyLog;
  adapters: readonly AnchorAdapter[];
  intervalS: number;
  logger?: Logger;
  tickMs?: number;
  now?: () => number;
  /** Backoff after the n-th failure: min(maxBackoffMs, baseBackoffMs · 2^(n−1)). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

type Row = AnchorReceiptRow & { submittedAt: number | null; nextAttempt: number };

export class Anchorer {
  readonly #o: AnchorerOptions;
  readonly #s: Record<string, Statement>;
  readonly #now: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #lastQueued = 0;
  #stopped = false;

  constructor(options: AnchorerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    const db = options.vault.database;
    this.#s = {
      queue: db.prepare("INSERT OR IGNORE INTO anchors (size, chain, adapter, state, updated_at) VALUES (?, ?, ?, 'queued', ?)"),
      due: db.prepare("SELECT size, chain, adapter, state, tx, block, confirmations, nonce, attempts, error, submitted_at, next_attempt FROM anchors WHERE chain = ? AND state != 'confirmed' AND next_attempt <= ? ORDER BY size"),
      all: db.prepare('SELECT size, chain, adapter, state, tx, block, confirmations, nonce, attempts, error, submitted_at, next_attempt FROM anchors ORDER BY size DESC, chain LIMIT ?'),
      bySize: db.prepare('SELECT size, chain, adapter, state, tx, block, confirmations, nonce, attempts, error, submitted_at, next_attempt FROM anchors WHERE size = ? ORDER BY chain'),
      submitted: db.prepare("UPDATE anchors SET state = 'submitted', tx = ?, nonce = ?, submitted_at = ?, attempts = attempts + 1, error = NULL, updated_at = ? WHERE size = ? AND chain = ?"),
      confirmed: db.prepare("UPDATE anchors SET state = 'confirmed', tx = coalesce(?, tx), block = ?, confirmations = ?, error = NULL, updated_at = ? WHERE size = ? AND chain = ?"),
      failed: db.prepare("UPDATE anchors SET state = 'failed', attempts = attempts + 1, error = ?, next_attempt = ?, updated_at = ? WHERE size = ? AND chain = ?"),
      deferred: db.prepare('UPDATE anchors SET error = ?, next_attempt = ?, updated_at = ? WHERE size = ? AND chain = ?'),
      counts: db.prepare('SELECT chain, state, count(*) FROM anchors GROUP BY chain, state'),
      retry: db.prepare("UPDATE anchors SET next_attempt = 0 WHERE state = 'failed'"),
    };
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.tickMs ?? 500);
    this.#timer.unref?.();
  }

  /** Stops the timer and waits for the round in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  /** One round: queue the newest checkpoint if the interval passed, then move every due row one step. */
  tick(): Promise<void> {
    if (this.#running || this.#stopped) return this.#running ?? Promise.resolve();
    this.#running = this.#round().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Makes every failed row due now (`nexus anchor retry`). */
  retryFailed(): number {
    this.#write(() => this.#s.retry!.run());
    return this.#o.vault.database.changes();
  }

  /** Receipts for one checkpoint size (proof bundles) or the newest `limit` rows. */
  receipts(size?: number, limit = 200): AnchorReceipt[] {
    const rows = size === undefined ? this.#s.all!.all(readRow, limit) : this.#s.bySize!.all(readRow, size);
    return rows.map((r) => ({ size: r.size, chain: r.chain, adapter: r.adapter, state: r.state, tx: r.tx, block: r.block, confirmations: r.confirmations }));
  }

  /** Full rows, for `anchor status` and `verify --anchors`. */
  rows(limit = 200): Row[] {
    return this.#s.all!.all(readRow, limit);
  }

  /** Receipt counts by chain and state (metrics). */
  counts(): Array<{ chain: string; state: string; n: number }> {
    return this.#s.counts!.all((s) => ({ chain: s.text(0), state: s.text(1), n: s.int(2) }));
  }

  /** Per chain: the newest row's state (for /v1/summary). */
  summary(): Record<string, { size: number; state: string; error: string | null }> {
    const out: Record<string, { size: number; state: string; error: string | null }> = {};
    for (const r of this.rows(50)) if (!out[r.chain]) out[r.chain] = { size: r.size, state: r.state, error: r.error };
    return out;
  }

  async #round(): Promise<void> {
    const now = this.#now();
    const latest = this.#o.log.latest();
    if (latest && latest.size > 0 && now - this.#lastQueued >= this.#o.intervalS * 1000) {
      this.#write(() => {
        for (const a of this.#o.adapters) this.#s.queue!.run(latest.size, a.chain, a.adapter, now);
      });
      this.#lastQueued = now;
    }
    // Chains in parallel; rows of one chain in order (EVM nonces are sequential).
    await Promise.all(this.#o.adapters.map(async (adapter) => {
      const due = this.#s.due!.all(readRow, adapter.chain, now);
      for (const row of due) {
        if (this.#stopped) return;
        await this.#step(adapter, row);
      }
    }));
  }

  async #step(adapter: AnchorAdapter, row: Row): Promise<void> {
    const cp = this.#checkpoint(row.size);
    if (!cp) return;
    const now = this.#now();
    try {
      if (row.state === 'submitted') {
        let c;
        try {
          c = await adapter.confirm(row);
        } catch (e) {
          // The chain is unreachable: the transaction may still be mined, so keep following it.
          this.#defer(row, (e as Error).message);
          return;
        }
        if (c.state === 'confirmed') {
          this.#write(() => this.#s.confirmed!.run(null, c.block, c.confirmations, now, row.size, row.chain));
          this.#o.logger?.info('anchor_confirmed', { size: row.size, chain: row.chain, tx: row.tx, block: c.block });
        } else if (c.state === 'failed') {
          this.#fail(row, c.reason);
        } else if (c.stuck) {
          const sub = await adapter.anchor(cp, row);
          this.#write(() => this.#s.submitted!.run(sub.tx, sub.nonce ?? null, now, now, row.size, row.chain));
          this.#o.logger?.warn('anchor_replaced', { size: row.size, chain: row.chain, old: row.tx, tx: sub.tx, nonce: sub.nonce });
        }
        return;
      }
      const sub = await adapter.anchor(cp, row.state === 'failed' ? undefined : row);
      this.#write(() => {
        this.#s.submitted!.run(sub.tx, sub.nonce ?? null, now, now, row.size, row.chain);
        if (sub.confirmed) this.#s.confirmed!.run(sub.tx, sub.confirmed.block, sub.confirmed.confirmations, now, row.size, row.chain);
      });
      this.#o.logger?.info('anchor_submitted', { size: row.size, chain: row.chain, tx: sub.tx });
    } catch (e) {
      this.#fail(row, (e as Error).message);
    }
  }

  #backoff(attempts: number): number {
    return Math.min(this.#o.maxBackoffMs ?? 300_000, (this.#o.baseBackoffMs ?? 2000) * 2 ** Math.min(attempts - 1, 20));
  }

  #defer(row: Row, reason: string): void {
    const now = this.#now();
    this.#write(() => this.#s.deferred!.run(reason, now + this.#backoff(Math.max(1, row.attempts)), now, row.size, row.chain));
    this.#o.logger?.warn('anchor_confirm_deferred', { size: row.size, chain: row.chain, tx: row.tx, error: reason });
  }

  #fail(row: Row, reason: string): void {
    const attempts = row.attempts + 1;
    const backoff = this.#backoff(attempts);
    const now = this.#now();
    this.#write(() => this.#s.failed!.run(reason, now + backoff, now, row.size, row.chain));
    this.#o.logger?.warn('anchor_failed', { size: row.size, chain: row.chain, attempts, retryInMs: backoff, error: reason });
  }

  #checkpoint(size: number): CheckpointRef | undefined {
    const cp = this.#o.log.checkpoint(size);
    return cp && { size: cp.size, note: cp.note };
  }

  #write(fn: () => void): void {
    this.#o.vault.transaction(fn);
  }
}

function readRow(s: Statement): Row {
  return {
    size: s.int(0), chain: s.text(1), adapter: s.text(2), state: s.text(3) as Row['state'],
    tx: s.textOrNull(4), block: s.isNull(5) ? null : s.int(5), confirmations: s.isNull(6) ? null : s.int(6),
    nonce: s.isNull(7) ? null : s.int(7), attempts: s.int(8), error: s.textOrNull(9),
    submittedAt: s.isNull(10) ? null : s.int(10), nextAttempt: s.int(11),
  };
}
