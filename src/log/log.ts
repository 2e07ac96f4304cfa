/**
 * The transparency log: the Merkle tree plus signed C2SP checkpoints
 * (c2sp.org/tlog-checkpoint) and the proof bundles of SPEC §3. Knows nothing
 * of HTTP; the server and the CLI both call it.
 */
import type { Statement } from '../vault/sqlite.ts';
import type { Vault } from '../vault/vault.ts';
import { MerkleTree } from './tree.ts';
import { toBase64 as b64, toHex as hex } from '../runtime/encoding.ts';
import { noteKeyId, type AnchorReceipt, type ProofBundle } from './verify.ts';

export interface NoteSigner {
  /** Key name in signature lines (no spaces, no '+'). */
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface CheckpointRecord {
  size: number;
  root: Uint8Array;
  note: string;
  ts: number;
}

const enc = new TextEncoder();

/** Signs note text (ending in a newline) as a C2SP signed note with one Ed25519 signature. */
export function signNote(text: string, signer: NoteSigner): string {
  const sig = signer.sign(enc.encode(text));
  const blob = new Uint8Array(4 + sig.length);
  blob.set(noteKeyId(signer.name, signer.publicKey));
  blob.set(sig, 4);
  return `${text}\n\u2014 ${signer.name} ${b64(blob)}\n`;
}

export function checkpointBody(origin: string, size: number, root: Uint8Array): string {
  return `${origin}\n${size}\n${b64(root)}\n`;
}

export class NotCheckpointedError extends Error {
  constructor(readonly seq: number, readonly size: number) {
    super(`event ${seq} is not covered by a checkpoint yet (latest size ${size})`);
  }
}

export class TransparencyLog {
  readonly tree: MerkleTree;
  readonly origin: string;
  readonly signer: NoteSigner;
  readonly #vault: Vault;
  readonly #put: Statement;
  readonly #get: Statement;
  readonly #latest: Statement;
  readonly #list: Statement;
  #latestCache: CheckpointRecord | undefined;
  /** The cut whose row is being fsynced (cutInBackground). */
  #cutting: Promise<CheckpointRecord | undefined> | undefined;
  /** Receipts of anchors for a checkpoint size (the anchoring room fills this in). */
  anchorsFor: (size: number) => AnchorReceipt[] = () => [];

  constructor(vault: Vault, origin: string, signer: NoteSigner) {
    if (/\s|\+/.test(signer.name)) throw new Error(`key name "${signer.name}" must not contain spaces or "+"`);
    this.#vault = vault;
    this.origin = origin;
    this.signer = signer;
    this.tree = new MerkleTree(vault);
    const db = vault.database;
    this.#put = db.prepare('INSERT INTO checkpoints (size, root, note, ts) VALUES (?, ?, ?, ?)');
    this.#get = db.prepare('SELECT size, root, note, ts FROM checkpoints WHERE size = ?');
    this.#latest = db.prepare('SELECT size, root, note, ts FROM checkpoints ORDER BY size DESC LIMIT 1');
    this.#list = db.prepare('SELECT size, root, note, ts FROM checkpoints WHERE size < ? ORDER BY size DESC LIMIT ?');
  }

  /** Repairs the tree after a crash and makes sure a checkpoint exists (size 0 on a new vault). */
  open(): { repaired: number } {
    const repaired = this.tree.repair();
    if (!this.latest()) this.cut(true);
    return { repaired };
  }

  latest(): CheckpointRecord | undefined {
    this.#latestCache ??= this.#latest.get(readCheckpoint);
    return this.#latestCache;
  }

  checkpoint(size: number): CheckpointRecord | undefined {
    return this.#get.get(readCheckpoint, size);
  }

  checkpoints(before: number, limit: number): CheckpointRecord[] {
    return this.#list.all(readCheckpoint, before, limit);
  }

  /**
   * Cuts a checkpoint when the tree grew since the last one (or `force` on an
   * empty log). It covers only entries already fsynced: a signed head over
   * rows a power cut could still take away would fork the log.
   */
  cut(force = false, now = Date.now()): CheckpointRecord | undefined {
    if (this.cutting) throw new Error('a checkpoint is being cut in the background');
    const record = this.#next(force, now);
    if (!record) return undefined;
    this.#vault.transaction(() => this.#put.run(record.size, record.root, record.note, record.ts));
    this.#latestCache = record;
    return record;
  }

  /**
   * cut(), with the row's fsync on the thread pool instead of the event loop
   * (the node cuts every second, and one slow fsync there held every request
   * back). The checkpoint is the latest only once its row is durable. A cut
   * asked for meanwhile runs once that one settled (the tree may have grown
   * since), so when it resolves, latest() covers every entry that was durable
   * when it was asked for.
   */
  cutInBackground(): Promise<CheckpointRecord | undefined> {
    if (this.#cutting) {
      const again = () => this.cutInBackground();
      return this.#cutting.then(again, again);
    }
    const now = Date.now();
    let record: CheckpointRecord | undefined;
    try {
      record = this.#next(false, now);
      if (!record) return Promise.resolve(undefined);
      const { size, root, note, ts } = record;
      this.#vault.transaction(() => this.#put.run(size, root, note, ts), { deferSync: true });
    } catch (e) {
      return Promise.reject(e);
    }
    const done = record;
    this.#cutting = this.#vault.syncCommitted()
      .then(() => {
        this.#latestCache = done;
        return done;
      })
      .finally(() => {
        this.#cutting = undefined;
      });
    return this.#cutting;
  }

  /** A cut's row is being fsynced (cutInBackground): the node's timer lets its tick pass. */
  get cutting(): boolean {
    return this.#cutting !== undefined;
  }

  /** The checkpoint due now, signed: over every durable entry, if the tree grew since the last. */
  #next(force: boolean, now: number): CheckpointRecord | undefined {
    const size = Math.min(this.tree.size, this.#vault.durableSize);
    const last = this.latest();
    if (last && last.size >= size) return undefined;
    if (!last && !force && size === 0) return undefined;
    const root = this.tree.root(size);
    return { size, root, note: signNote(checkpointBody(this.origin, size, root), this.signer), ts: now };
  }

  /** SPEC §3 proof bundle for `seq` against the checkpoint of `size` (default: latest). */
  proofBundle(seq: number, size?: number): ProofBundle {
    const cp = size === undefined ? this.latest() : this.checkpoint(size);
    if (!cp) throw new RangeError(`no checkpoint of size ${size}`);
    if (seq >= cp.size) throw new NotCheckpointedError(seq, cp.size);
    const stored = this.#vault.entry(seq);
    if (!stored) throw new RangeError(`no event ${seq}`);
    return {
      entry: stored.canonical,
      index: seq,
      leafHash: hex(stored.leaf),
      auditPath: this.tree.inclusionProof(seq, cp.size).map(hex),
      treeSize: cp.size,
      checkpoint: cp.note,
      keyName: this.signer.name,
      publicKey: b64(this.signer.publicKey),
      anchors: this.anchorsFor(cp.size),
    };
  }

  consistency(from: number, to: number): string[] {
    return this.tree.consistencyProof(from, to).map(hex);
  }
}

function readCheckpoint(s: Statement): CheckpointRecord {
  return { size: s.int(0), root: s.blob(1), note: s.text(2), ts: s.int(3) };
}
