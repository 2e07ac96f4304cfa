/**
 * The offline audit behind `nexus verify`: everything the node claims is
 * recomputed from the rows — SQLite integrity, canonical bytes, leaf hashes,
 * split invariants, seq continuity, stored evidence, every interior node,
 * every checkpoint root and signature, and the derived totals and accounts.
 * The first problem found is named precisely; the rest of the scan goes on so
 * the report counts them all.
 */
import { parseCanonicalEntry, type LedgerEntry } from '../brain/entry.ts';
import { formatPolicy } from '../brain/policy.ts';
import { splitBatch } from '../brain/split.ts';
import { leafHashes } from '../hotpath/hotpath.ts';
import { sha256 } from '../runtime/crypto.ts';
import { equalBytes, toHex as hex } from '../runtime/encoding.ts';
import type { Vault } from '../vault/vault.ts';
import { MerkleTree } from './tree.ts';
import { parseCheckpointBody, parseNote, verifyNote } from './verify.ts';
import { checkpointBody } from './log.ts';

export interface AuditReport {
  ok: boolean;
  entries: number;
  checkpoints: number;
  problems: string[];
  /** The first problem, as one line (what `verify` prints and exits on). */
  first?: string;
}

export interface AuditOptions {
  keyName: string;
  publicKey: Uint8Array;
  progress?: (done: number, total: number) => void;
  /** Stop collecting after this many problems. */
  maxProblems?: number;
  /** @internal Checkpoints read per statement (tests make it small to cross chunk edges). */
  checkpointChunk?: number;
}

const enc = new TextEncoder();

export function auditVault(vault: Vault, options: AuditOptions): AuditReport {
  const problems: string[] = [];
  const max = options.maxProblems ?? 100;
  const problem = (p: string) => {
    if (problems.length < max) problems.push(p);
  };
  const db = vault.database;

  const integrity = vault.integrityCheck();
  if (integrity !== 'ok') problem(`sqlite integrity_check: ${integrity}`);

  const policyText = formatPolicy(vault.policy);
  const total = vault.size;
  const leaves = new Uint8Array(total * 32);
  const totals = { amount: 0n, creator: 0n, pool: 0n, fee: 0n };
  const accounts = new Map<string, { credited: bigint; events: number }>();
  // The evidence row of an entry is the run with the greatest first_seq ≤ seq.
  // Runs are walked in step with the entries (both in seq order), and each
  // run's bytes are hashed once, however many entries it authenticates.
  const runs = vault.scanEvidence();
  let nextRun = runs.next();
  let run: { hash: Uint8Array; ok: boolean } | undefined;
  let expected = 0;
  let rows = 0;
  type Row = { seq: number; canonical: string; leaf: Uint8Array; entry?: LedgerEntry };
  const batch: Row[] = [];
  // Leaves and policy splits are recomputed per chunk: one WASM call each.
  const flushBatch = () => {
    if (batch.length === 0) return;
    const recomputed = leafHashes(batch.map((b) => enc.encode(b.canonical)));
    const parsed = batch.filter((b) => b.entry);
    const splits = parsed.length ? splitBatch(parsed.map((b) => b.entry!.amount), vault.policy) : [];
    parsed.forEach((b, i) => {
      const s = b.entry!.split;
      const want = splits[i]!;
      if (want.creator !== s.creator || want.pool !== s.pool || want.fee !== s.fee) problem(`entry ${b.seq}: split ${s.creator}/${s.pool}/${s.fee} is not the policy's ${want.creator}/${want.pool}/${want.fee}`);
    });
    batch.forEach((b, i) => {
      const want = recomputed.subarray(i * 32, i * 32 + 32);
      if (!equalBytes(want, b.leaf)) problem(`entry ${b.seq}: stored leaf hash ${hex(b.leaf)} is not SHA-256(0x00 ‖ canonical bytes) ${hex(want)}`);
      if (b.seq < total) leaves.set(want, b.seq * 32);
    });
    batch.length = 0;
  };

  for (const row of vault.scan()) {
    rows++;
    if (row.seq !== expected) {
      problem(`entry ${expected}: missing (next row is seq ${row.seq}); seq must have no gaps`);
      expected = row.seq;
    }
    expected++;
    const item: Row = { seq: row.seq, canonical: row.canonical, leaf: row.leaf };
    try {
      const e = parseCanonicalEntry(row.canonical);
      if (e.seq !== row.seq) problem(`entry ${row.seq}: canonical bytes say seq ${e.seq}`);
      if (e.subject !== row.subject || e.ref !== row.ref) problem(`entry ${row.seq}: subject/ref columns differ from the canonical bytes`);
      if (e.policy !== policyText) problem(`entry ${row.seq}: policy ${e.policy} is not the vault's ${policyText}`);
      if (e.amount < 1n || e.amount > 0xffff_ffff_ffff_ffffn) problem(`entry ${row.seq}: amount ${e.amount} out of range`);
      const s = e.split;
      if (s.creator < 0n || s.pool < 0n || s.fee < 0n || s.creator + s.pool + s.fee !== e.amount) {
        problem(`entry ${row.seq}: split invariant violated (${s.creator} + ${s.pool} + ${s.fee} != ${e.amount})`);
      } else if (e.amount >= 1n && e.amount <= 0xffff_ffff_ffff_ffffn) {
        item.entry = e;
      }
      const evHex = hex(row.evidenceHash);
      if (evHex !== e.evidence) problem(`entry ${row.seq}: evidence column differs from the canonical bytes`);
      else {
        while (!nextRun.done && nextRun.value.firstSeq <= row.seq) {
          run = { hash: nextRun.value.hash, ok: equalBytes(sha256(nextRun.value.bytes), nextRun.value.hash) };
          nextRun = runs.next();
        }
        if (!run || !equalBytes(run.hash, row.evidenceHash)) problem(`entry ${row.seq}: its authentication evidence is missing`);
        else if (!run.ok) problem(`entry ${row.seq}: evidence does not hash to ${e.evidence}`);
      }
      totals.amount += e.amount;
      totals.creator += s.creator;
      totals.pool += s.pool;
      totals.fee += s.fee;
      const a = accounts.get(e.beneficiary) ?? { credited: 0n, events: 0 };
      a.credited += s.creator;
      a.events++;
      accounts.set(e.beneficiary, a);
    } catch (err) {
      problem(`entry ${row.seq}: unreadable canonical bytes (${(err as Error).message})`);
    }
    batch.push(item);
    if (batch.length >= 4096) flushBatch();
    if (rows % 16384 === 0) options.progress?.(rows, total);
  }
  flushBatch();
  options.progress?.(rows, total);

  // Derived aggregates.
  const t = vault.totals;
  if (t.entries !== rows || t.amount !== totals.amount || t.creator !== totals.creator || t.pool !== totals.pool || t.fee !== totals.fee) {
    problem(`totals: stored ${t.entries} entries / ${t.amount} do not match the rows (${rows} / ${totals.amount})`);
  }
  for (const acc of vault.allAccounts()) {
    const want = accounts.get(acc.beneficiary);
    if (!want || want.credited !== acc.credited || want.events !== acc.events) problem(`account ${acc.beneficiary}: stored ${acc.credited} over ${acc.events} events does not match the rows`);
    accounts.delete(acc.beneficiary);
  }
  for (const b of accounts.keys()) problem(`account ${b}: missing`);

  // The tree: every stored interior node recomputed from the leaves.
  const treeSize = Number(vault.meta('tree_size') ?? '0');
  if (treeSize !== rows) problem(`tree: covers ${treeSize} leaves, the ledger has ${rows}`);

  // Checkpoints: root recomputed for its size (in the same pass over the
  // leaves as the tree), body re-derived, signature verified. A node cuts one
  // a second while it books, so their notes are read a chunk at a time.
  const sizeStmt = db.prepare('SELECT size FROM checkpoints ORDER BY size');
  const sizes = sizeStmt.all((s) => s.int(0));
  sizeStmt.finalize();
  const covered = Math.min(rows, total);
  const nodeStmt = db.prepare('SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?');
  const { bad, roots } = MerkleTree.audit(leaves, covered, (level, index) => nodeStmt.get((s) => s.blob(0), level, index), {
    storedSize: treeSize,
    sizes: sizes.filter((size) => size <= covered),
  });
  nodeStmt.finalize();
  if (bad) problem(`tree node (level ${bad.level}, index ${bad.index}) does not match the leaves below it`);

  const chunkSize = options.checkpointChunk ?? 4096;
  const cps = db.prepare('SELECT size, root, note FROM checkpoints WHERE size >= ? ORDER BY size LIMIT ?');
  let nextRoot = 0;
  for (let from = 0; ; ) {
    const chunk = cps.all((s) => ({ size: s.int(0), root: s.blob(1), note: s.text(2) }), from, chunkSize);
    for (const cp of chunk) {
      const where = `checkpoint ${cp.size}`;
      if (cp.size > covered) {
        problem(`${where}: covers more entries than the ledger holds (${rows})`);
        continue;
      }
      const root = roots[nextRoot++]!;
      if (!equalBytes(root, cp.root)) problem(`${where}: stored root ${hex(cp.root)} is not the root of the first ${cp.size} leaves (${hex(root)})`);
      const parsed = parseNote(cp.note);
      const body = parsed && parseCheckpointBody(parsed.text);
      if (!parsed || !body) problem(`${where}: not a signed tlog checkpoint`);
      else {
        if (parsed.text !== checkpointBody(body.origin, cp.size, root)) problem(`${where}: note body does not commit to the recomputed root`);
        if (!verifyNote(cp.note, options.keyName, options.publicKey)) problem(`${where}: signature by ${options.keyName} does not verify`);
      }
    }
    if (chunk.length < chunkSize) break;
    from = chunk[chunk.length - 1]!.size + 1;
  }
  cps.finalize();

  return { ok: problems.length === 0, entries: rows, checkpoints: sizes.length, problems, ...(problems[0] ? { first: problems[0] } : {}) };
}
