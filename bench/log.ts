/**
 * Log benchmark (issue 3): on a synthetic vault of N entries built through the
 * real append path (canonical bytes, WASM leaf hashes, rows, tree nodes, one
 * transaction per 16,384 entries):
 *   - append throughput (rows + tree) and tree integration alone
 *   - inclusion proof latency at size N (random leaves, median / p99)
 *   - Merkle root over 1M leaves: WASM SIMD vs WASM scalar vs per-node node:crypto
 *   - `verify` (the full offline audit) time
 *
 *   node --import tsx bench/log.ts                     # 1,000,000 entries
 *   node --import tsx bench/log.ts --entries 10000000  # 10M (≈ 4 GB on disk)
 *   node --import tsx bench/log.ts --entries 200000 --checkpoint-every 100
 *     # a checkpoint per 100 entries (a node cutting one a second at 100 events/s)
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vault, type PreparedEntry } from '../src/vault/vault.ts';
import { TransparencyLog } from '../src/log/log.ts';
import { auditVault } from '../src/log/audit.ts';
import { canonicalEntry, type LedgerEntry } from '../src/brain/entry.ts';
import { splitBatch } from '../src/brain/split.ts';
import { leafHashes, merkleRoot } from '../src/hotpath/hotpath.ts';
import { percentile } from '../src/bench/load.ts';
import { testSigner } from '../test/support/log.ts';

const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const N = arg('--entries', 1_000_000);
const EVERY = arg('--checkpoint-every', 0);
const CHUNK = EVERY > 0 ? Math.min(16_384, EVERY) : 16_384;
const dir = mkdtempSync(join(tmpdir(), 'nexus-logbench-'));
const enc = new TextEncoder();
const signer = testSigner('bench.example/log');

const vault = await Vault.open(join(dir, 'vault.db'));
const log = new TransparencyLog(vault, signer.name, signer);
log.open();
const evidence = enc.encode('synthetic evidence');
const evidenceHash = createHash('sha256').update(evidence).digest();
const evidenceHex = evidenceHash.toString('hex');

let integrateMs = 0;
const t0 = performance.now();
for (let from = 0; from < N; from += CHUNK) {
  const count = Math.min(CHUNK, N - from);
  const amounts = Array.from({ length: count }, (_, i) => BigInt(1000 + ((from + i) % 100_000)));
  const splits = splitBatch(amounts, vault.policy);
  const prepared: PreparedEntry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const entry: LedgerEntry = { v: 1, seq: from + i, ts: 1_700_000_000_000 + from + i, subject: `did:key:bench${(from + i) % 64}`, beneficiary: `did:key:bench${(from + i) % 64}`, amount: amounts[i]!, split: splits[i]!, policy: '6000/3000/1000', ref: null, evidence: evidenceHex };
    prepared[i] = { entry, canonical: canonicalEntry(entry), leaf: new Uint8Array(0), evidenceHash, evidence };
  }
  const leaves = leafHashes(prepared.map((p) => enc.encode(p.canonical)));
  for (let i = 0; i < count; i++) prepared[i]!.leaf = leaves.subarray(i * 32, i * 32 + 32);
  vault.transaction(() => {
    vault.appendEntries(prepared);
    const ti = performance.now();
    log.tree.integrate(leaves, count);
    integrateMs += performance.now() - ti;
  });
  if (EVERY > 0 && (from + count) % EVERY === 0) log.cut();
  if (from % (CHUNK * 16) === 0) process.stderr.write(`\rbuilt ${from + count}/${N}`);
}
const buildS = (performance.now() - t0) / 1000;
process.stderr.write('\n');
log.cut();

// Inclusion proofs at size N: random leaves, each timed alone.
const proofMs: number[] = [];
for (let i = 0; i < 2000; i++) {
  const m = Math.floor(Math.random() * N);
  const t = performance.now();
  log.tree.inclusionProof(m, N);
  proofMs.push(performance.now() - t);
}
proofMs.sort((a, b) => a - b);
const bundleMs: number[] = [];
for (let i = 0; i < 500; i++) {
  const m = Math.floor(Math.random() * N);
  const t = performance.now();
  log.proofBundle(m);
  bundleMs.push(performance.now() - t);
}
bundleMs.sort((a, b) => a - b);

// Root over up to 1M leaves: WASM SIMD, WASM scalar, per-node node:crypto.
const R = Math.min(N, 1_000_000);
const rootLeaves = vault.leaves(0, R);
const time = (fn: () => void) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};
const simdMs: number[] = [];
const scalarMs: number[] = [];
const cryptoMs: number[] = [];
let cryptoRoot = '';
for (let rep = 0; rep < 3; rep++) {
  simdMs.push(time(() => merkleRoot(rootLeaves, R, true)));
  scalarMs.push(time(() => merkleRoot(rootLeaves, R, false)));
  cryptoMs.push(time(() => {
    let level: Buffer[] = Array.from({ length: R }, (_, i) => Buffer.from(rootLeaves.subarray(i * 32, i * 32 + 32)));
    const prefix = Buffer.from([1]);
    while (level.length > 1) {
      const next: Buffer[] = [];
      for (let i = 0; i + 1 < level.length; i += 2) next.push(createHash('sha256').update(prefix).update(level[i]!).update(level[i + 1]!).digest());
      if (level.length % 2 === 1) next.push(level[level.length - 1]!);
      level = next;
    }
    cryptoRoot = level[0]!.toString('hex');
  }));
}
if (cryptoRoot !== Buffer.from(merkleRoot(rootLeaves, R)).toString('hex')) throw new Error('root mismatch');
const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const ta = performance.now();
const report = auditVault(vault, { keyName: signer.name, publicKey: signer.publicKey });
const auditS = (performance.now() - ta) / 1000;
if (!report.ok) throw new Error(`audit failed: ${report.first}`);
const dbBytes = statSync(join(dir, 'vault.db')).size + statSync(join(dir, 'vault.db-wal'), { throwIfNoEntry: false } as never)?.size;

console.log(`\nentries: ${N.toLocaleString('en')}, node ${process.version}, vault ${(dbBytes / 1e6).toFixed(0)} MB\n`);
console.log('| measure | value |');
console.log('| --- | ---: |');
console.log(`| append (rows + tree, ${CHUNK}-entry transactions) | ${Math.round(N / buildS).toLocaleString('en')} entries/s |`);
console.log(`| tree integration alone (WASM SIMD pairs + node rows) | ${Math.round(N / (integrateMs / 1000)).toLocaleString('en')} leaves/s |`);
console.log(`| inclusion proof at ${N.toLocaleString('en')} (tree only) | median ${percentile(proofMs, 50).toFixed(3)} ms, p99 ${percentile(proofMs, 99).toFixed(3)} ms |`);
console.log(`| proof bundle at ${N.toLocaleString('en')} (entry + path + checkpoint) | median ${percentile(bundleMs, 50).toFixed(3)} ms, p99 ${percentile(bundleMs, 99).toFixed(3)} ms |`);
console.log(`| root over ${R.toLocaleString('en')} leaves, WASM SIMD | ${med(simdMs).toFixed(0)} ms |`);
console.log(`| root, WASM scalar | ${med(scalarMs).toFixed(0)} ms |`);
console.log(`| root, node:crypto per node | ${med(cryptoMs).toFixed(0)} ms (SIMD is ${(med(cryptoMs) / med(simdMs)).toFixed(1)}× faster) |`);
console.log(`| nexus verify (full audit, ${report.checkpoints.toLocaleString('en')} checkpoints) | ${auditS.toFixed(1)} s |`);

vault.close();
rmSync(dir, { recursive: true, force: true });
