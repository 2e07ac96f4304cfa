/**
 * Group commit: every submission that arrives while the event loop is busy is
 * booked in one transaction with one fsync, and each caller is answered only
 * after that fsync returned (a 2xx means the row is on disk). One row per
 * transaction costs ~40× a row inside a group (NOTES.md).
 *
 * The fsync runs on the thread pool: while the disk works, the event loop
 * keeps parsing and verifying, and what arrives meanwhile forms the next
 * group, committed as soon as the fsync returned. If an fsync fails the
 * committer stops for good: the pages may be gone, so nothing after the last
 * good fsync can be called durable (it rejects everything from then on).
 *
 * A group commits as soon as the previous one's fsync returned, unless more
 * requests are on their way (their body being read, their signature being
 * verified: see expect()): then it waits for them, a few milliseconds at
 * most, as PostgreSQL's commit_delay does when other transactions are
 * active. On a fast disk the fsync returns so soon that groups stay at one
 * or two events, each paying a commit's fixed cost alone (~20 rewritten
 * pages, ~0.6 ms of CPU here against ~65 µs per event: bench/commit.ts);
 * nobody waits when nobody else is coming.
 *
 * Per group: idempotency (subject + ref) is resolved first, then every new
 * amount is split in one WASM call, canonical bytes and leaf hashes are built
 * in one pass, and the rows go in. A ref booked by an earlier group is not
 * looked up first: the unique index on (subject, ref) finds it on insert
 * anyway, and a seek costs ~3 µs per event in WASM SQLite. When it does
 * (a retry), the transaction rolls back and the group is planned again,
 * every ref looked up.
 */
import { splitBatch, SplitInvariantError, type Split } from '../brain/split.ts';
import { canonicalEntry, type LedgerEntry } from '../brain/entry.ts';
import { formatPolicy } from '../brain/policy.ts';
import { leafHashes } from '../hotpath/hotpath.ts';
import { sha256 } from '../runtime/crypto.ts';
import { toHex as hex } from '../runtime/encoding.ts';
import { RefBookedError, type NonceRecord, type PreparedEntry, type StoredEntry, type Vault } from './vault.ts';

export interface EventRequest {
  beneficiary: string;
  amount: bigint;
  ref: string | null;
}

/** One authenticated request: its events share one subject and one piece of evidence. */
export interface Submission {
  subject: string;
  events: readonly EventRequest[];
  /** Authentication evidence (signature base + signature, JWT, initData …). */
  evidence: Uint8Array;
  /** A signature nonce to make durable with this group (replay safety across restarts). */
  nonce?: NonceRecord;
}

export interface Receipt {
  seq: number;
  leaf: string;
  amount: string;
  split: { creator: string; pool: string; fee: string };
  subject: string;
  beneficiary: string;
  ts: number;
  ref: string | null;
}

export type Outcome =
  /** At least one event was booked now (201); replayed ones carry their first receipt. */
  | { kind: 'booked'; receipts: Receipt[] }
  /** Every event was booked before under the same refs (200). */
  | { kind: 'replayed'; receipts: Receipt[] }
  /** A ref was booked before with a different amount or beneficiary (409). */
  | { kind: 'conflict'; index: number; ref: string };

export class StorageError extends Error {
  constructor(override readonly cause: unknown) {
    super(`vault write failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'StorageError';
  }
}

export interface CommittedBatch {
  firstSeq: number;
  entries: readonly PreparedEntry[];
  /** Transaction time, fsync included. */
  seconds: number;
}

export interface GroupCommitOptions {
  /** Most events in one transaction; the rest wait for the next group. */
  maxGroupEvents?: number;
  /**
   * How long a group may wait for requests announced with expect() (0: never
   * waits). It stops waiting once none is left on its way, or it holds
   * `commitWaitEvents` events.
   */
  commitWaitMs?: number;
  /** A group that holds this many events commits without waiting. */
  commitWaitEvents?: number;
  /** Called inside each transaction with the new leaf hashes (the log adds them to the tree). */
  integrate?: (leaves: Uint8Array, count: number) => void;
  /** Called after each durable COMMIT. */
  onCommitted?: (batch: CommittedBatch) => void;
  /** Called when the split invariant fails (an alarm: it never should). */
  onInvariantViolation?: (error: SplitInvariantError) => void;
  /** Called once when an fsync failed and the committer stopped taking events. */
  onSyncFailure?: (error: StorageError) => void;
  now?: () => number;
}

interface Pending {
  submission: Submission;
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
}

/** What one submission becomes in its group: its fresh events, and where each receipt comes from. */
interface Plan {
  p: Pending;
  fresh: EventRequest[];
  slots: Array<StoredEntry | number>;
  outcome?: Outcome;
}


export function receiptOf(entry: LedgerEntry, leaf: Uint8Array): Receipt {
  return {
    seq: entry.seq,
    leaf: hex(leaf),
    amount: entry.amount.toString(),
    split: { creator: entry.split.creator.toString(), pool: entry.split.pool.toString(), fee: entry.split.fee.toString() },
    subject: entry.subject,
    beneficiary: entry.beneficiary,
    ts: entry.ts,
    ref: entry.ref,
  };
}

const schedule: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/** A request on its way to the committer: submit() through it, or cancel() it if it never will. Both are final. */
export interface Arrival {
  submit(submission: Submission): Promise<Outcome>;
  cancel(): void;
}

export class GroupCommitter {
  readonly #vault: Vault;
  readonly #maxGroup: number;
  readonly #options: GroupCommitOptions;
  readonly #policyText: string;
  #queue: Pending[] = [];
  #queuedEvents = 0;
  #scheduled = false;
  /** Requests announced with expect() that have not submitted or cancelled yet. */
  #expected = 0;
  /** Set while a group waits for them. */
  #waiting: { timer: ReturnType<typeof setTimeout> } | undefined;
  readonly #waitMs: number;
  readonly #waitEvents: number;
  #idle: Array<() => void> = [];
  #closed = false;
  #broken: StorageError | undefined;

  constructor(vault: Vault, options: GroupCommitOptions = {}) {
    this.#vault = vault;
    this.#options = options;
    this.#maxGroup = options.maxGroupEvents ?? 8192;
    this.#waitMs = options.commitWaitMs ?? 0;
    this.#waitEvents = options.commitWaitEvents ?? 64;
    this.#policyText = formatPolicy(vault.policy);
  }

  /** Queues a submission; settles after its group is durable. */
  submit(submission: Submission): Promise<Outcome> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#closed) return Promise.reject(new StorageError(new Error('the vault is closing')));
    return new Promise<Outcome>((resolve, reject) => {
      this.#queue.push({ submission, resolve, reject });
      this.#queuedEvents += submission.events.length;
      if (!this.#scheduled) {
        this.#scheduled = true;
        this.#soon();
      } else if (this.#waiting && this.#queuedEvents >= this.#waitEvents) {
        this.#stopWaiting();
      }
    });
  }

  /**
   * Announces a request that will submit soon (call it before reading its
   * body and verifying it): a group about to commit may wait for it.
   */
  expect(): Arrival {
    this.#expected++;
    let open = true;
    // Once, after its submission (if any) is queued: the last one on its way releases a waiting group.
    const arrived = () => {
      if (!open) return;
      open = false;
      if (--this.#expected === 0) this.#stopWaiting();
    };
    return {
      submit: (submission) => {
        const outcome = this.submit(submission);
        arrived();
        return outcome;
      },
      cancel: arrived,
    };
  }

  /** Flushes on the next turn, or once the requests on their way arrived (commitWaitMs at most). */
  #soon(): void {
    schedule(() => {
      if (this.#waitMs > 0 && this.#expected > 0 && this.#queuedEvents < this.#waitEvents && !this.#closed) {
        this.#waiting = { timer: setTimeout(() => this.#stopWaiting(), this.#waitMs) };
      } else {
        this.#flush();
      }
    });
  }

  #stopWaiting(): void {
    if (!this.#waiting) return;
    clearTimeout(this.#waiting.timer);
    this.#waiting = undefined;
    this.#flush();
  }

  /** Resolves when everything queued so far has been committed (or failed). */
  drain(): Promise<void> {
    if (this.#queue.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Set once an fsync failed: the committer refuses every submission from then on. */
  get failure(): StorageError | undefined {
    return this.#broken;
  }

  /** Refuses new work; finishes what is queued. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopWaiting();
    await this.drain();
  }

  #flush(): void {
    let events = 0;
    let take = 0;
    while (take < this.#queue.length && (take === 0 || events + this.#queue[take]!.submission.events.length <= this.#maxGroup)) {
      events += this.#queue[take]!.submission.events.length;
      take++;
    }
    const group = this.#queue.splice(0, take);
    this.#queuedEvents -= events;
    let syncing: Promise<void> | undefined;
    try {
      syncing = this.#commitGroup(group);
    } finally {
      // The next group waits for this one's fsync (and a checkpoint's, if one
      // fell due); until then it grows.
      if (syncing) void syncing.then(() => this.#checkpoint(), () => {}).then(() => this.#next());
      else this.#next();
    }
  }

  /** Checkpoints the WAL if due, its fsync on the thread pool like a commit's (a failure is as final). */
  #checkpoint(): Promise<void> | undefined {
    return this.#vault.checkpointInBackground()?.catch((e: unknown) => {
      if (this.#broken) return;
      this.#broken = new StorageError(e);
      this.#options.onSyncFailure?.(this.#broken);
    });
  }

  #next(): void {
    if (this.#broken) {
      for (const p of this.#queue.splice(0)) p.reject(this.#broken);
      this.#queuedEvents = 0;
    }
    if (this.#queue.length > 0) {
      this.#soon();
    } else {
      this.#scheduled = false;
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /**
   * Books one group; returns a promise when its callers are answered only
   * after an fsync. Refs are looked up in the vault only with `lookUp`, the
   * second plan after an insert met a booked ref.
   */
  #commitGroup(group: Pending[], lookUp = false): Promise<void> | undefined {
    const vault = this.#vault;
    // Refs booked earlier in this same group, so concurrent retries collapse too.
    const inGroup = new Map<string, { entry: LedgerEntry; index: number }>();
    const plans: Plan[] = [];
    const freshAll: Array<{ plan: number; req: EventRequest }> = [];

    /** Each event's slot: a stored entry (replay), a fresh event, or the first conflict in event order. */
    const resolve = (p: Pending, booked: Vault | undefined) => {
      const { subject, events } = p.submission;
      const slots: Array<StoredEntry | number> = [];
      const fresh: EventRequest[] = [];
      for (let i = 0; i < events.length; i++) {
        const req = events[i]!;
        const prior = req.ref === null ? undefined : findPrior(booked, inGroup, subject, req.ref);
        if (prior) {
          if (prior.amount !== req.amount || prior.beneficiary !== req.beneficiary) {
            return { slots, fresh, conflict: { kind: 'conflict', index: i, ref: req.ref! } satisfies Outcome };
          }
          slots.push(prior.stored ?? -1 - prior.freshIndex!);
        } else {
          slots.push(fresh.length);
          fresh.push(req);
        }
      }
      return { slots, fresh, conflict: undefined };
    };

    for (const p of group) {
      const subject = p.submission.subject;
      const { slots, fresh, conflict: found } = resolve(p, lookUp ? vault : undefined);
      // Found without lookups, a conflict is with this group: an earlier event
      // may conflict with a ref booked before, and the answer names the first
      // (as booking one at a time would).
      const conflict = found && !lookUp ? resolve(p, vault).conflict : found;
      if (conflict) {
        plans.push({ p, fresh: [], slots: [], outcome: conflict });
        continue;
      }
      const planIndex = plans.length;
      plans.push({ p, fresh, slots });
      for (const req of fresh) {
        const idx = freshAll.length;
        freshAll.push({ plan: planIndex, req });
        if (req.ref !== null) {
          inGroup.set(refKey(subject, req.ref), { entry: { amount: req.amount, beneficiary: req.beneficiary } as LedgerEntry, index: idx });
        }
      }
    }

    const failed = new Map<number, unknown>();
    const splits = this.#split(freshAll.map((f) => f.req.amount), freshAll, failed);

    const ts = (this.#options.now ?? Date.now)();
    const firstSeq = vault.size;
    const prepared: PreparedEntry[] = [];
    const byFresh: Array<PreparedEntry | undefined> = new Array(freshAll.length);
    // A submission's events share its evidence: hashed (and spelt in hex) once.
    let evidenceOf: Pending | undefined;
    let evidenceHash: Uint8Array = EMPTY;
    let evidenceHex = '';
    for (let i = 0; i < freshAll.length; i++) {
      const f = freshAll[i]!;
      if (failed.has(f.plan)) continue;
      const p = plans[f.plan]!.p;
      if (p !== evidenceOf) {
        evidenceOf = p;
        evidenceHash = sha256(p.submission.evidence);
        evidenceHex = hex(evidenceHash);
      }
      const entry: LedgerEntry = {
        v: 1,
        seq: firstSeq + prepared.length,
        ts,
        subject: p.submission.subject,
        beneficiary: f.req.beneficiary,
        amount: f.req.amount,
        split: splits[i]!,
        policy: this.#policyText,
        ref: f.req.ref,
        evidence: evidenceHex,
      };
      const pe: PreparedEntry = { entry, canonical: canonicalEntry(entry), leaf: EMPTY, evidenceHash, evidence: p.submission.evidence };
      prepared.push(pe);
      byFresh[i] = pe;
    }
    const nonces: NonceRecord[] = [];
    for (const p of group) if (p.submission.nonce) nonces.push(p.submission.nonce);
    if (prepared.length > 0 || nonces.length > 0) {
      const leaves = prepared.length > 0 ? leafHashes(prepared.map((pe) => pe.canonical)) : EMPTY;
      for (let i = 0; i < prepared.length; i++) prepared[i]!.leaf = leaves.subarray(i * 32, i * 32 + 32);
      const t0 = performance.now();
      try {
        vault.transaction(() => {
          vault.appendEntries(prepared);
          if (prepared.length > 0) this.#options.integrate?.(leaves, prepared.length);
          vault.recordNonces(nonces, ts);
        }, { deferSync: true });
      } catch (e) {
        if (e instanceof RefBookedError && !lookUp) return this.#commitGroup(group, true);
        this.#rejectAll(plans, failed, new StorageError(e));
        return undefined;
      }
      return vault.syncCommitted().then(
        () => {
          if (prepared.length > 0) this.#options.onCommitted?.({ firstSeq, entries: prepared, seconds: (performance.now() - t0) / 1000 });
          this.#answer(plans, failed, byFresh);
        },
        (e: unknown) => {
          this.#broken = new StorageError(e);
          this.#rejectAll(plans, failed, this.#broken);
          this.#options.onSyncFailure?.(this.#broken);
        },
      );
    }
    this.#answer(plans, failed, byFresh);
    return undefined;
  }

  #rejectAll(plans: Plan[], failed: Map<number, unknown>, error: StorageError): void {
    plans.forEach((plan, i) => {
      if (plan.outcome) plan.p.resolve(plan.outcome);
      else plan.p.reject(failed.get(i) ?? error);
    });
  }

  #answer(plans: Plan[], failed: Map<number, unknown>, byFresh: Array<PreparedEntry | undefined>): void {
    // Map each plan's slots to receipts: stored (earlier), fresh (now), or a
    // fresh entry of an earlier submission in this group (negative slot).
    let freshCursor = 0;
    for (let pi = 0; pi < plans.length; pi++) {
      const plan = plans[pi]!;
      if (plan.outcome) {
        plan.p.resolve(plan.outcome);
        continue;
      }
      const start = freshCursor;
      freshCursor += plan.fresh.length;
      if (failed.has(pi)) {
        plan.p.reject(failed.get(pi));
        continue;
      }
      const receipts = plan.slots.map((slot) => {
        if (typeof slot !== 'number') return receiptOf(slot.entry, slot.leaf);
        const pe = slot >= 0 ? byFresh[start + slot]! : byFresh[-1 - slot]!;
        return receiptOf(pe.entry, pe.leaf);
      });
      plan.p.resolve({ kind: plan.fresh.length > 0 ? 'booked' : 'replayed', receipts });
    }
  }

  /** Splits all fresh amounts in one call; isolates the plan at fault if the invariant fails. */
  #split(amounts: bigint[], freshAll: Array<{ plan: number }>, failed: Map<number, unknown>): Split[] {
    try {
      return splitBatch(amounts, this.#vault.policy);
    } catch (e) {
      if (!(e instanceof SplitInvariantError)) throw e;
      this.#options.onInvariantViolation?.(e);
      const out: Split[] = [];
      for (let i = 0; i < amounts.length; i++) {
        try {
          out.push(splitBatch([amounts[i]!], this.#vault.policy)[0]!);
        } catch (err) {
          failed.set(freshAll[i]!.plan, err);
          out.push({ creator: 0n, pool: 0n, fee: 0n });
        }
      }
      return out;
    }
  }
}

const EMPTY = new Uint8Array(0);
const refKey = (subject: string, ref: string) => `${subject}\u0000${ref}`;

function findPrior(
  vault: Vault | undefined,
  inGroup: Map<string, { entry: LedgerEntry; index: number }>,
  subject: string,
  ref: string,
): { amount: bigint; beneficiary: string; stored?: StoredEntry; freshIndex?: number } | undefined {
  const pending = inGroup.get(refKey(subject, ref));
  if (pending) return { amount: pending.entry.amount, beneficiary: pending.entry.beneficiary, freshIndex: pending.index };
  const stored = vault?.entryByRef(subject, ref);
  return stored && { amount: stored.entry.amount, beneficiary: stored.entry.beneficiary, stored };
}
