/**
 * The vault: the append-only ledger in WASM SQLite on a real file.
 *
 * WAL + locking_mode=EXCLUSIVE, one writer process (pid lock), schema
 * versioned in `meta`. SQLite runs with synchronous=NORMAL and the vault
 * fsyncs every file a commit wrote itself: right after COMMIT for ordinary
 * transactions (as FULL would), or on the thread pool for the group committer,
 * which answers its callers only once that fsync returned — so the event loop
 * keeps parsing and verifying while the disk works. The vault also runs the
 * WAL checkpoints itself (SQLite's automatic one would fsync twice on the
 * event loop inside a COMMIT): after a group's fsync, with the database fsync
 * on the thread pool as well (checkpointInBackground). Rows are only ever
 * inserted; the derived aggregates (accounts, totals) are updated in the same
 * transaction as the rows they count, and `nexus verify` recomputes them.
 */
import { fs, path, fsyncAsync } from '../runtime/fs.ts';
import { equalBytes } from '../runtime/encoding.ts';
import { formatPolicy, parsePolicy, DEFAULT_POLICY, type Policy } from '../brain/policy.ts';
import { parseCanonicalEntry, type LedgerEntry } from '../brain/entry.ts';
import { Database, type Statement } from './sqlite.ts';
import { acquirePidLock, type PidLock } from './pid-lock.ts';

export const SCHEMA_VERSION = 6;

/** The WAL growth that triggers a checkpoint: SQLite's default of 1000 frames of 4 KiB pages. */
const CHECKPOINT_WAL_BYTES = 1000 * (4096 + 24);
/**
 * A background checkpoint also waits for this many group commits, up to a WAL
 * of CHECKPOINT_WAL_CAP times the threshold. Each checkpoint copies the pages
 * rewritten since the last one and holds the next commit until the
 * database's fsync returned; commits that write a lot of WAL met one every
 * few commits: single events at 64 connections (~470 KB a commit of ~33
 * events) every ~9th, batches of 100 (~1 MB a commit) every 4th. Waiting for
 * 16 commits, single events went ×1.10 and ×1.13 in two side-by-side runs
 * (3 alternating pairs each, ahead in every pair); batches by +4% over 7
 * pairs, within this machine's noise. Small commits (single events at 2,000
 * req/s: ~150 KB) reach the threshold after 16 commits or more anyway, so
 * their checkpoints stay as small as they were: a larger one holds the event
 * loop longer (event-loop max 64–122 against 46–56 ms at that rate with a
 * fixed 16 MB threshold).
 */
const CHECKPOINT_COMMITS = 16;
const CHECKPOINT_WAL_CAP = 16;

/** @internal Exported for the migration tests. */
export const MIGRATIONS: readonly string[] = [
  // 1: ledger, evidence, derived aggregates.
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE entries (
     seq INTEGER PRIMARY KEY,
     subject TEXT NOT NULL,
     ref TEXT,
     canonical TEXT NOT NULL,
     leaf BLOB NOT NULL,
     evidence BLOB NOT NULL
   );
   CREATE UNIQUE INDEX entries_subject_ref ON entries(subject, ref) WHERE ref IS NOT NULL;
   CREATE INDEX entries_subject_seq ON entries(subject, seq);
   CREATE TABLE evidence (hash BLOB PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;
   CREATE TABLE accounts (beneficiary TEXT PRIMARY KEY, credited TEXT NOT NULL, events INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL,
     amount TEXT NOT NULL, creator TEXT NOT NULL, pool TEXT NOT NULL, fee TEXT NOT NULL);
   INSERT INTO totals VALUES (0, 0, '0', '0', '0', '0');`,
  // 2: enrolled devices; accepted signature nonces, kept until their window closes.
  `CREATE TABLE devices (did TEXT PRIMARY KEY, label TEXT, added_at TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE nonces (key TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX nonces_expires ON nonces(expires);`,
  // 3: the Merkle log: every complete interior node (level ≥ 1; leaves live in
  // entries) and the signed checkpoints.
  `CREATE TABLE tree_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
   CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, ts INTEGER NOT NULL);
   INSERT INTO meta (key, value) VALUES ('tree_size', '0');`,
  // 4: anchor receipts, one durable state machine per (checkpoint size, chain).
  `CREATE TABLE anchors (
     size INTEGER NOT NULL, chain TEXT NOT NULL, adapter TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('queued', 'submitted', 'confirmed', 'failed')),
     tx TEXT, block INTEGER, confirmations INTEGER, nonce INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt INTEGER NOT NULL DEFAULT 0, submitted_at INTEGER, error TEXT, updated_at INTEGER NOT NULL,
     PRIMARY KEY (size, chain)) WITHOUT ROWID;
   CREATE INDEX anchors_state ON anchors(state, next_attempt);`,
  // 5: append-ordered evidence and nonces. Keyed by hash (evidence) or by key
  // (nonces), every request wrote into a random B-tree page of each: two
  // extra 4 KiB WAL frames per request. Evidence now has one row per run of
  // consecutive entries it authenticates, keyed by the run's first seq;
  // nonces are clustered by expiry, which only ever grows.
  `CREATE TABLE evidence_v5 (first_seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, bytes BLOB NOT NULL);
   INSERT INTO evidence_v5 (first_seq, hash, bytes)
     SELECT r.seq, r.evidence, v.bytes
     FROM (SELECT seq, evidence, lag(evidence) OVER (ORDER BY seq) AS prev FROM entries) r
     JOIN evidence v ON v.hash = r.evidence
     WHERE r.prev IS NULL OR r.prev != r.evidence;
   DROP TABLE evidence;
   ALTER TABLE evidence_v5 RENAME TO evidence;
   CREATE TABLE nonces_v5 (expires INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (expires, key)) WITHOUT ROWID;
   INSERT OR IGNORE INTO nonces_v5 (expires, key) SELECT expires, key FROM nonces;
   DROP TABLE nonces;
   ALTER TABLE nonces_v5 RENAME TO nonces;`,
  // 6: interior nodes of levels 1–3 are no longer stored; the tree hashes
  // them from their leaves when a proof needs one (STORED_FROM_LEVEL in
  // log/tree.ts). They were 7 of every 8 rows.
  `DELETE FROM tree_nodes WHERE level < 4;`,
];

/** appendEntries met a (subject, ref) that is booked already. */
export class RefBookedError extends Error {
  constructor(readonly subject: string, readonly ref: string) {
    super(`ref ${JSON.stringify(ref)} of ${subject} is booked already`);
    this.name = 'RefBookedError';
  }
}

export interface Device {
  did: string;
  label: string | null;
  addedAt: string;
}

export interface NonceRecord {
  key: string;
  /** ms since epoch after which the signature's `created` is outside the window anyway. */
  expires: number;
}

export interface StoredEntry {
  entry: LedgerEntry;
  canonical: string;
  leaf: Uint8Array;
}

export interface Totals {
  entries: number;
  amount: bigint;
  creator: bigint;
  pool: bigint;
  fee: bigint;
}

export interface Account {
  beneficiary: string;
  credited: bigint;
  events: number;
}

/** An entry ready to insert: its canonical bytes and leaf hash are already computed. */
export interface PreparedEntry {
  entry: LedgerEntry;
  canonical: string;
  leaf: Uint8Array;
  evidenceHash: Uint8Array;
  evidence: Uint8Array;
}

export interface VaultOpenOptions {
  /** Policy stored when the vault is created; ignored for an existing vault. */
  policy?: Policy;
  /** @internal The thread-pool fsync; tests replace it to simulate a failing disk (EIO cannot be provoked here). */
  fsyncAsync?: (fd: number) => Promise<void>;
  /** @internal WAL growth that triggers a checkpoint (tests make it small to checkpoint often). */
  checkpointWalBytes?: number;
  /** @internal Group commits a background checkpoint waits for (CHECKPOINT_COMMITS; tests make it 1). */
  checkpointCommits?: number;
  /**
   * Told how long each fsync on the thread pool took, from its dispatch until
   * the event loop saw it return (a wait for a free pool thread and the
   * event loop's lateness included), and what it made durable: a group commit or
   * a checkpoint's database pages (the next commit waits for both). The
   * node's latency can never be below it; a slow disk shows here first.
   */
  onFsync?: (seconds: number, kind: FsyncKind) => void;
}

export type FsyncKind = 'commit' | 'checkpoint';

export class Vault {
  readonly file: string;
  readonly policy: Policy;
  readonly #db: Database;
  readonly #lock: PidLock;
  readonly #s: ReturnType<typeof prepareAll>;
  #size: number;
  #durableSize: number;
  #totals: Totals;
  #lastNoncePrune = 0;
  /** Thread-pool fsyncs not yet returned (close must not race them). */
  #syncing = 0;
  /** Settles when the newest syncCommitted() has; rejects for good after a failed fsync. */
  #syncChain: Promise<void> = Promise.resolve();
  /** Set by the first failed fsync: from then on nothing may be called durable. */
  #failed: unknown;
  #undo: Array<() => void> | undefined;
  /** Evidence hash of the newest entry (a run continues across groups only if it matches). */
  #lastEvidence: Uint8Array | undefined;

  readonly #fsyncAsync: (fd: number) => Promise<void>;
  readonly #onFsync: VaultOpenOptions['onFsync'];
  readonly #checkpointWalBytes: number;
  /** The WAL that is checkpointed whatever the commit count (CHECKPOINT_WAL_CAP thresholds). */
  readonly #walCapBytes: number;
  readonly #checkpointCommits: number;
  /** Group commits since the last checkpoint (checkpointInBackground counts them). */
  #commitsSinceCheckpoint = 0;

  private constructor(file: string, db: Database, lock: PidLock, policy: Policy, options: VaultOpenOptions) {
    this.#fsyncAsync = options.fsyncAsync ?? fsyncAsync;
    this.#onFsync = options.onFsync;
    this.#checkpointWalBytes = options.checkpointWalBytes ?? CHECKPOINT_WAL_BYTES;
    this.#walCapBytes = CHECKPOINT_WAL_CAP * this.#checkpointWalBytes;
    this.#checkpointCommits = options.checkpointCommits ?? CHECKPOINT_COMMITS;
    this.file = file;
    this.#db = db;
    this.#lock = lock;
    this.policy = policy;
    this.#s = prepareAll(db);
    this.#size = this.#s.size.get((s) => (s.isNull(0) ? 0 : s.int(0) + 1)) ?? 0;
    this.#totals = this.#readTotals();
    this.#lastEvidence = this.#size > 0 ? this.#s.evidenceHashOf.get((st) => st.blob(0), this.#size - 1) : undefined;
    // A killed predecessor may have left commits in the page cache only.
    this.#fsync(db.takeUnsynced(true));
    this.#durableSize = this.#size;
  }

  static async open(file: string, options: VaultOpenOptions = {}): Promise<Vault> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const lock = acquirePidLock(`${file}.lock`);
    let db: Database | undefined;
    try {
      db = await Database.open(file);
      // Exclusive locking must come before the first read, or WAL cannot open
      // without shared memory (NOTES.md).
      db.exec('PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;');
      // A 16 MiB page cache holds every device's hot index pages (the 2 MiB
      // default re-read them from the WAL). The vault checkpoints by itself.
      db.exec(`PRAGMA cache_size=-${16 * 1024}; PRAGMA wal_autocheckpoint=0;`);
      const policy = migrate(db, options.policy ?? DEFAULT_POLICY);
      return new Vault(file, db, lock, policy, options);
    } catch (e) {
      db?.close();
      lock.release();
      throw e;
    }
  }

  /** Number of entries; also the next seq. */
  get size(): number {
    return this.#size;
  }

  /** Entries known to be on disk (fsynced); a checkpoint never covers more. */
  get durableSize(): number {
    return this.#durableSize;
  }

  get totals(): Totals {
    return { ...this.#totals };
  }

  meta(key: string): string | undefined {
    return this.#s.metaGet.get((s) => s.text(0), key);
  }

  /**
   * Runs fn in one write transaction. By default it is on disk when this
   * returns; with `deferSync` the caller must await syncCommitted() before it
   * tells anyone the transaction happened.
   */
  transaction<T>(fn: () => T, options: { deferSync?: boolean } = {}): T {
    if (this.#failed !== undefined) throw new Error(`the vault stopped after a failed fsync: ${(this.#failed as Error)?.message ?? String(this.#failed)}`);
    let result: T;
    this.#undo = [];
    try {
      result = this.#db.transaction(fn);
    } catch (e) {
      for (const undo of this.#undo.reverse()) undo();
      throw e;
    } finally {
      this.#undo = undefined;
    }
    if (!options.deferSync) {
      try {
        this.#fsync(this.#db.takeUnsynced());
        // The group committer checkpoints in the background (past the
        // threshold, every 16 commits). Without one (anchors and enrolment on
        // an idle node, tools) the WAL still must not grow for ever: at the
        // cap a plain SQLite checkpoint runs here, fsyncing here as its
        // automatic one would. Not sooner: under load the committer lets the
        // WAL grow past the threshold on purpose, and a transaction in
        // between (an anchor's state, an enrolment) would pay a database
        // fsync on the event loop.
        if (this.#db.walBytes() >= this.#walCapBytes) this.#checkpoint();
      } catch (e) {
        this.#failed ??= e;
        throw e;
      }
      this.#durableSize = Math.max(this.#durableSize, this.#size);
    }
    return result;
  }

  /**
   * Copies the WAL back into the database once it has grown by
   * CHECKPOINT_WAL_BYTES since the last checkpoint over at least
   * CHECKPOINT_COMMITS calls (the group committer calls this after each
   * commit), or by CHECKPOINT_WAL_CAP times that in any case; with no fsync
   * on the event loop: the WAL is fsynced already (no commit is being synced
   * when this runs), and the database's fsync runs on the thread pool. The
   * promise settles when it returned; the WAL cannot be restarted before (the
   * VFS fsyncs the database first if anything writes to it meanwhile), so the
   * group committer waits for it before its next commit. Undefined when no
   * checkpoint is due, or a commit's fsync is still running.
   */
  checkpointInBackground(): Promise<void> | undefined {
    this.#commitsSinceCheckpoint++;
    if (this.#failed !== undefined || this.#syncing > 0) return undefined;
    const wal = this.#db.walBytes();
    if (wal < this.#checkpointWalBytes) return undefined;
    if (this.#commitsSinceCheckpoint < this.#checkpointCommits && wal < this.#walCapBytes) return undefined;
    this.#db.checkpointOwingSync(() => this.#checkpoint());
    return this.syncCommitted('checkpoint').then(() => this.#db.paidOwed());
  }

  #checkpoint(): void {
    this.#db.walBytes(true);
    this.#commitsSinceCheckpoint = 0;
    try {
      this.#db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    } catch {
      // As with SQLite's automatic checkpoint, a failed one is only retried
      // later: SQLite marks the WAL copied only after the database fsync it
      // asked for succeeded, so the WAL still holds every commit. (In the
      // background the database fsync is owed, and judged where it is awaited.)
    }
  }

  /** Inside transaction(): restores in-memory state (ledger size and totals, the tree's size) if it rolls back. */
  onRollback(undo: () => void): void {
    if (!this.#undo) throw new Error('onRollback outside a transaction');
    this.#undo.push(undo);
  }

  /**
   * fsyncs, on the thread pool, every file written since the last fsync; all
   * commits made before this call are durable when it resolves. Calls settle
   * in call order, and after one fails every later one rejects too — as does
   * every transaction: a failed fsync may have dropped pages that a later,
   * successful one would not report, so nothing after it may be called
   * durable, ever.
   */
  syncCommitted(kind: FsyncKind = 'commit'): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const size = this.#size;
    let mine: Promise<unknown>;
    try {
      const fds = this.#db.takeUnsynced(); // writes out what the VFS held back: may fail like a write
      this.#syncing++;
      const started = performance.now();
      mine = Promise.all(fds.map(this.#fsyncAsync)).finally(() => this.#syncing--);
      if (this.#onFsync && fds.length > 0) void mine.then(() => this.#onFsync!((performance.now() - started) / 1000, kind), () => {});
    } catch (e) {
      mine = Promise.reject(e);
    }
    mine.catch(() => {}); // judged in order below, not as an unhandled rejection
    const done = this.#syncChain.then(() => mine).then(
      () => {
        this.#durableSize = Math.max(this.#durableSize, size);
      },
      (e: unknown) => {
        this.#failed ??= e;
        throw this.#failed;
      },
    );
    this.#syncChain = done;
    return done;
  }

  #fsync(fds: number[]): void {
    for (const fd of fds) fs.fsyncSync(fd);
  }

  /**
   * Inserts entries whose seq continues the ledger without a gap; must run
   * inside transaction(). Aggregates are updated in the same transaction.
   * Throws RefBookedError, and the transaction must roll back, when an entry's
   * (subject, ref) is booked already: the unique index checks it anyway, so
   * the group committer need not look every ref up first.
   */
  appendEntries(batch: readonly PreparedEntry[]): void {
    if (batch.length === 0) return;
    const s = this.#s;
    const before = { size: this.#size, totals: this.#totals, lastEvidence: this.#lastEvidence };
    this.onRollback(() => {
      this.#size = before.size;
      this.#totals = before.totals;
      this.#lastEvidence = before.lastEvidence;
    });
    const credited = new Map<string, { amount: bigint; events: number }>();
    const t = { ...this.#totals };
    let lastEvidence = this.#lastEvidence;
    for (const p of batch) {
      const e = p.entry;
      if (e.seq !== this.#size) throw new Error(`seq ${e.seq} does not continue the ledger at ${this.#size}`);
      // One evidence row per run of consecutive entries it authenticates (a batch shares one).
      if (!lastEvidence || !equalBytes(p.evidenceHash, lastEvidence)) s.evidence.run(e.seq, p.evidenceHash, p.evidence);
      lastEvidence = p.evidenceHash;
      s.insert.run(e.seq, e.subject, e.ref, p.canonical, p.leaf, p.evidenceHash);
      if (e.ref !== null && this.#db.changes() === 0) throw new RefBookedError(e.subject, e.ref);
      this.#size++;
      const c = credited.get(e.beneficiary) ?? { amount: 0n, events: 0 };
      c.amount += e.split.creator;
      c.events++;
      credited.set(e.beneficiary, c);
      t.entries++;
      t.amount += e.amount;
      t.creator += e.split.creator;
      t.pool += e.split.pool;
      t.fee += e.split.fee;
    }
    for (const [beneficiary, c] of credited) {
      const prev = this.account(beneficiary);
      s.accountSet.run(beneficiary, (prev.credited + c.amount).toString(), prev.events + c.events);
    }
    s.totalsSet.run(t.entries, t.amount.toString(), t.creator.toString(), t.pool.toString(), t.fee.toString());
    this.#totals = t;
    this.#lastEvidence = lastEvidence;
  }

  /** Records accepted nonces; must run inside transaction(). */
  recordNonces(nonces: readonly NonceRecord[], now: number): void {
    for (const n of nonces) this.#s.nonceAdd.run(n.expires, n.key);
    // Expired nonces go every second, a second's worth at a time: at 2,000
    // signed req/s a 30 s sweep deleted 60k rows in one commit (a 40–50 ms
    // stall on the event loop every 30 s); a 1 s one takes ~2 ms.
    if (now - this.#lastNoncePrune >= 1_000) {
      this.#s.noncePrune.run(now);
      this.#lastNoncePrune = now;
    }
  }

  /** Nonces whose window is still open (loaded into the replay store at start). */
  liveNonces(now: number): NonceRecord[] {
    return this.#s.noncesLive.all((s) => ({ key: s.text(0), expires: s.int(1) }), now);
  }

  devices(): Device[] {
    return this.#s.devicesAll.all((s) => ({ did: s.text(0), label: s.textOrNull(1), addedAt: s.text(2) }));
  }

  /** Enrols a device; false when it was enrolled already. */
  addDevice(did: string, label: string | null): boolean {
    if (this.#s.deviceGet.get((s) => s.text(0), did) !== undefined) return false;
    this.transaction(() => this.#s.deviceAdd.run(did, label, new Date().toISOString()));
    return true;
  }

  /** Removes a device; false when it was not enrolled. */
  removeDevice(did: string): boolean {
    if (this.#s.deviceGet.get((s) => s.text(0), did) === undefined) return false;
    this.transaction(() => this.#s.deviceRemove.run(did));
    return true;
  }

  entry(seq: number): StoredEntry | undefined {
    return this.#s.bySeq.get(readStored, seq);
  }

  entryByRef(subject: string, ref: string): StoredEntry | undefined {
    return this.#s.byRef.get(readStored, subject, ref);
  }

  /** The evidence bytes stored for an entry (signature base + signature, JWT or initData). */
  evidence(seq: number): Uint8Array | undefined {
    return this.evidenceRun(seq)?.bytes;
  }

  /**
   * The evidence row covering `seq` — the run starting at the greatest
   * first_seq ≤ seq — provided its hash is the one the entry names.
   */
  evidenceRun(seq: number): { firstSeq: number; hash: Uint8Array; bytes: Uint8Array } | undefined {
    const want = this.#s.evidenceHashOf.get((s) => s.blob(0), seq);
    if (!want) return undefined;
    const run = this.#s.evidenceOf.get((s) => ({ firstSeq: s.int(0), hash: s.blob(1), bytes: s.blob(2) }), seq);
    return run && equalBytes(run.hash, want) ? run : undefined;
  }

  /** Newest first, strictly below `before` (a seq), at most `limit`. */
  entries(options: { subject?: string; before?: number; limit: number }): StoredEntry[] {
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    return options.subject === undefined
      ? this.#s.listAll.all(readStored, before, options.limit)
      : this.#s.listSubject.all(readStored, options.subject, before, options.limit);
  }

  /** Leaf hashes of [from, to) in seq order, 32 bytes each, concatenated. */
  leaves(from: number, to: number): Uint8Array {
    const out = new Uint8Array((to - from) * 32);
    let i = 0;
    this.#s.leaves.all((s) => out.set(s.blob(0), 32 * i++), from, to);
    if (i !== to - from) throw new Error(`leaves ${from}..${to}: found ${i}`);
    return out;
  }

  account(beneficiary: string): Account {
    return this.#s.accountGet.get((s) => ({ beneficiary, credited: BigInt(s.text(0)), events: s.int(1) }), beneficiary)
      ?? { beneficiary, credited: 0n, events: 0 };
  }

  /** Raw rows for the offline audit, in seq order from `from`. */
  *scan(from = 0, chunk = 4096): Generator<{ seq: number; subject: string; ref: string | null; canonical: string; leaf: Uint8Array; evidenceHash: Uint8Array }> {
    let next = from;
    for (;;) {
      const rows = this.#s.scan.all((s) => ({ seq: s.int(0), subject: s.text(1), ref: s.textOrNull(2), canonical: s.text(3), leaf: s.blob(4), evidenceHash: s.blob(5) }), next, chunk);
      yield* rows;
      if (rows.length < chunk) return;
      next = rows[rows.length - 1]!.seq + 1;
    }
  }

  /** Evidence runs in first_seq order (the offline audit walks them beside scan()). */
  *scanEvidence(chunk = 1024): Generator<{ firstSeq: number; hash: Uint8Array; bytes: Uint8Array }> {
    let next = 0;
    for (;;) {
      const rows = this.#s.evidenceScan.all((s) => ({ firstSeq: s.int(0), hash: s.blob(1), bytes: s.blob(2) }), next, chunk);
      yield* rows;
      if (rows.length < chunk) return;
      next = rows[rows.length - 1]!.firstSeq + 1;
    }
  }

  allAccounts(): Account[] {
    return this.#s.accountsAll.all((s) => ({ beneficiary: s.text(0), credited: BigInt(s.text(1)), events: s.int(2) }));
  }

  integrityCheck(): string {
    const s = this.#db.prepare('PRAGMA integrity_check');
    try {
      return s.all((r) => r.text(0)).join('; ');
    } finally {
      s.finalize();
    }
  }

  /** @internal For the log and the audit, which keep their own tables in the same file. */
  get database(): Database {
    return this.#db;
  }

  #readTotals(): Totals {
    return this.#s.totalsGet.get((s) => ({
      entries: s.int(0), amount: BigInt(s.text(1)), creator: BigInt(s.text(2)), pool: BigInt(s.text(3)), fee: BigInt(s.text(4)),
    }))!;
  }

  close(): void {
    // A pending thread-pool fsync must not meet a closed descriptor; closing
    // fsyncs every dirty file itself (the VFS), so only wait is at stake.
    if (this.#syncing > 0) throw new Error('vault closed while a commit is being synced; await the group committer first');
    try {
      this.#db.close();
    } finally {
      this.#lock.release();
    }
  }
}

function readStored(s: Statement): StoredEntry {
  const canonical = s.text(0);
  return { entry: parseCanonicalEntry(canonical), canonical, leaf: s.blob(1) };
}

function prepareAll(db: Database) {
  return {
    size: db.prepare('SELECT max(seq) FROM entries'),
    metaGet: db.prepare('SELECT value FROM meta WHERE key = ?'),
    evidence: db.prepare('INSERT INTO evidence (first_seq, hash, bytes) VALUES (?, ?, ?)'),
    // A booked ref is skipped, not an error, so appendEntries can tell it apart from any other failure.
    insert: db.prepare('INSERT INTO entries (seq, subject, ref, canonical, leaf, evidence) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject, ref) WHERE ref IS NOT NULL DO NOTHING'),
    bySeq: db.prepare('SELECT canonical, leaf FROM entries WHERE seq = ?'),
    byRef: db.prepare('SELECT canonical, leaf FROM entries WHERE subject = ? AND ref = ?'),
    evidenceHashOf: db.prepare('SELECT evidence FROM entries WHERE seq = ?'),
    evidenceScan: db.prepare('SELECT first_seq, hash, bytes FROM evidence WHERE first_seq >= ? ORDER BY first_seq LIMIT ?'),
    evidenceOf: db.prepare('SELECT first_seq, hash, bytes FROM evidence WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1'),
    listAll: db.prepare('SELECT canonical, leaf FROM entries WHERE seq < ? ORDER BY seq DESC LIMIT ?'),
    listSubject: db.prepare('SELECT canonical, leaf FROM entries WHERE subject = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
    leaves: db.prepare('SELECT leaf FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq'),
    scan: db.prepare('SELECT seq, subject, ref, canonical, leaf, evidence FROM entries WHERE seq >= ? ORDER BY seq LIMIT ?'),
    accountGet: db.prepare('SELECT credited, events FROM accounts WHERE beneficiary = ?'),
    accountSet: db.prepare('INSERT INTO accounts (beneficiary, credited, events) VALUES (?, ?, ?) ON CONFLICT(beneficiary) DO UPDATE SET credited = excluded.credited, events = excluded.events'),
    accountsAll: db.prepare('SELECT beneficiary, credited, events FROM accounts ORDER BY beneficiary'),
    totalsGet: db.prepare('SELECT entries, amount, creator, pool, fee FROM totals WHERE id = 0'),
    nonceAdd: db.prepare('INSERT OR IGNORE INTO nonces (expires, key) VALUES (?, ?)'),
    noncePrune: db.prepare('DELETE FROM nonces WHERE expires < ?'),
    noncesLive: db.prepare('SELECT key, expires FROM nonces WHERE expires >= ?'),
    devicesAll: db.prepare('SELECT did, label, added_at FROM devices ORDER BY added_at, did'),
    deviceGet: db.prepare('SELECT did FROM devices WHERE did = ?'),
    deviceAdd: db.prepare('INSERT INTO devices (did, label, added_at) VALUES (?, ?, ?)'),
    deviceRemove: db.prepare('DELETE FROM devices WHERE did = ?'),
    totalsSet: db.prepare('UPDATE totals SET entries = ?, amount = ?, creator = ?, pool = ?, fee = ? WHERE id = 0'),
  };
}

/** Brings the schema to SCHEMA_VERSION; returns the vault's policy (stored at creation). */
function migrate(db: Database, initialPolicy: Policy): Policy {
  const versionStmt = db.prepare('PRAGMA user_version');
  const version = versionStmt.get((s) => s.int(0)) ?? 0;
  versionStmt.finalize();
  if (version > SCHEMA_VERSION) {
    throw new Error(`vault schema ${version} is newer than this node understands (${SCHEMA_VERSION}); upgrade nexus`);
  }
  if (version < SCHEMA_VERSION) {
    db.transaction(() => {
      for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      if (version === 0) {
        const set = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
        set.run('policy', formatPolicy(initialPolicy));
        set.run('created', new Date().toISOString());
        set.finalize();
      }
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    });
  }
  const get = db.prepare("SELECT value FROM meta WHERE key = 'policy'");
  const policy = get.get((s) => s.text(0));
  get.finalize();
  if (!policy) throw new Error('vault has no policy in meta');
  return parsePolicy(policy);
}
