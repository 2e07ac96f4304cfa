import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Vault, SCHEMA_VERSION } from '../src/vault/vault.ts';
import { GroupCommitter, type GroupCommitOptions, type Submission } from '../src/vault/group-commit.ts';
import { VaultLockedError } from '../src/vault/pid-lock.ts';
import { Database } from '../src/vault/sqlite.ts';
import { parsePolicy } from '../src/brain/policy.ts';
import { refLeafHash, refSplit, hex } from './support/reference.ts';
import { tempDir } from './support/node.ts';

const enc = new TextEncoder();
const sub = (subject: string, events: Array<{ amount: bigint; ref?: string | null; beneficiary?: string }>): Submission => ({
  subject,
  evidence: enc.encode(`evidence of ${subject}`),
  events: events.map((e) => ({ amount: e.amount, ref: e.ref ?? null, beneficiary: e.beneficiary ?? subject })),
});

/** A vault in a temp dir with its group committer, closed and removed after the test. */
async function openCommitter(t: TestContext, options: GroupCommitOptions = {}) {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const vault = await Vault.open(join(tmp.dir, 'vault.db'));
  const committer = new GroupCommitter(vault, options);
  t.after(async () => {
    await committer.close();
    vault.close();
  });
  return { vault, committer };
}

test('the vault writes a real WAL-mode SQLite file that survives reopen', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  let vault = await Vault.open(file);
  const committer = new GroupCommitter(vault);
  const out = await committer.submit(sub('a', [{ amount: 100n }, { amount: 7n, beneficiary: 'b' }]));
  assert.equal(out.kind, 'booked');
  await committer.close();
  vault.close();
  assert.ok(statSync(file).size > 0, 'the database is on disk, not in a memory FS');

  vault = await Vault.open(file);
  t.after(() => vault.close());
  assert.equal(vault.size, 2);
  const e1 = vault.entry(1)!;
  assert.equal(e1.entry.amount, 7n);
  assert.equal(e1.entry.beneficiary, 'b');
  assert.deepEqual(e1.entry.split, refSplit(7n, 6000, 3000));
  assert.equal(hex(e1.leaf), hex(refLeafHash(enc.encode(e1.canonical))));
  assert.deepEqual(vault.totals, { entries: 2, amount: 107n, creator: 64n, pool: 32n, fee: 11n });
  assert.deepEqual(vault.account('b'), { beneficiary: 'b', credited: 4n, events: 1 });
  assert.equal(vault.integrityCheck(), 'ok');
  assert.equal(new TextDecoder().decode(vault.evidence(0)), 'evidence of a');
  // The file really is WAL + SQLite, readable by the sqlite3 header magic.
  assert.equal(readFileSync(file).subarray(0, 15).toString(), 'SQLite format 3');
});

test('the policy is fixed at creation and the schema version is recorded', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  let vault = await Vault.open(file, { policy: parsePolicy('7000/2000/1000') });
  vault.close();
  vault = await Vault.open(file, { policy: parsePolicy('6000/3000/1000') });
  t.after(() => vault.close());
  assert.deepEqual(vault.policy, { creatorBp: 7000, poolBp: 2000, feeBp: 1000 });
  const committer = new GroupCommitter(vault);
  const out = await committer.submit(sub('a', [{ amount: 10n }]));
  assert.equal(out.kind, 'booked');
  if (out.kind === 'booked') assert.deepEqual(out.receipts[0]!.split, { creator: '7', pool: '2', fee: '1' });
  const db = vault.database.prepare('PRAGMA user_version');
  assert.equal(db.get((s) => s.int(0)), SCHEMA_VERSION);
  db.finalize();
});

test('a newer schema is refused rather than misread', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  const db = await Database.open(file);
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  await assert.rejects(Vault.open(file), /newer than this node understands/);
  assert.ok(!existsSync(`${file}.lock`), 'a failed open releases the lock');
});

test('concurrent submissions share group commits, get gap-free seqs, and each is answered once', async (t) => {
  const groups: number[] = [];
  const { vault, committer } = await openCommitter(t, { onCommitted: (b) => groups.push(b.entries.length) });
  const n = 500;
  const outcomes = await Promise.all(Array.from({ length: n }, (_, i) => committer.submit(sub(`s${i % 7}`, [{ amount: BigInt(i + 1), ref: `r${i}` }]))));
  const seqs = outcomes.map((o) => (o.kind === 'booked' ? o.receipts[0]!.seq : -1)).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: n }, (_, i) => i));
  assert.equal(vault.size, n);
  assert.ok(groups.length < n / 4, `expected batching, got ${groups.length} groups for ${n} submissions`);
  assert.equal(groups.reduce((a, b) => a + b, 0), n);
  assert.equal(vault.totals.amount, BigInt((n * (n + 1)) / 2));
});

test('idempotency: same subject + ref returns the first receipt, in the same group or later; other values conflict', async (t) => {
  const { vault, committer } = await openCommitter(t);
  // Three concurrent retries of one request land in one group: one booking.
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => committer.submit(sub('dev', [{ amount: 50n, ref: 'x' }]))));
  assert.equal(a!.kind, 'booked');
  assert.equal(b!.kind, 'replayed');
  assert.equal(c!.kind, 'replayed');
  assert.equal(vault.size, 1);
  assert.deepEqual((b as { receipts: unknown }).receipts, (a as { receipts: unknown }).receipts);
  // A later retry: still the first receipt.
  const later = await committer.submit(sub('dev', [{ amount: 50n, ref: 'x' }]));
  assert.equal(later.kind, 'replayed');
  // Another subject may use the same ref.
  assert.equal((await committer.submit(sub('other', [{ amount: 50n, ref: 'x' }]))).kind, 'booked');
  // Same ref, different amount or beneficiary: conflict, nothing written.
  assert.deepEqual(await committer.submit(sub('dev', [{ amount: 51n, ref: 'x' }])), { kind: 'conflict', index: 0, ref: 'x' });
  assert.deepEqual(await committer.submit(sub('dev', [{ amount: 1n }, { amount: 50n, ref: 'x', beneficiary: 'z' }])), { kind: 'conflict', index: 1, ref: 'x' });
  assert.equal(vault.size, 2);
  // A batch mixing a replayed ref and a new event books only the new one.
  const mixed = await committer.submit(sub('dev', [{ amount: 50n, ref: 'x' }, { amount: 9n, ref: 'y' }]));
  assert.equal(mixed.kind, 'booked');
  if (mixed.kind === 'booked') assert.deepEqual(mixed.receipts.map((r) => r.seq), [0, 2]);
  assert.equal(vault.size, 3);
});

test('the pid lock keeps a second writer out and is taken over from a dead owner', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  const vault = await Vault.open(file);
  await assert.rejects(Vault.open(file), VaultLockedError);
  vault.close();
  // A lock left by a process that no longer exists (pid of a finished child).
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  writeFileSync(`${file}.lock`, `${dead}\n`);
  const again = await Vault.open(file);
  assert.equal(readFileSync(`${file}.lock`, 'utf8').trim(), String(process.pid));
  again.close();
  assert.ok(!existsSync(`${file}.lock`));
  // A lock held by a live process (this test's parent) is respected.
  writeFileSync(`${file}.lock`, `${process.ppid}\n`);
  await assert.rejects(Vault.open(file), (e: unknown) => e instanceof VaultLockedError && e.pid === process.ppid);
});

test('a storage failure rejects the whole group and leaves the vault consistent', async (t) => {
  const { vault, committer } = await openCommitter(t);
  await committer.submit(sub('a', [{ amount: 1n }]));
  // Make the next insert fail inside the transaction (a trigger stands in for a full disk).
  vault.database.exec("CREATE TEMP TRIGGER fail BEFORE INSERT ON entries WHEN NEW.seq = 1 BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  const results = await Promise.allSettled([committer.submit(sub('a', [{ amount: 2n }])), committer.submit(sub('b', [{ amount: 3n }]))]);
  assert.ok(results.every((r) => r.status === 'rejected' && /vault write failed/.test(String(r.reason))));
  assert.equal(vault.size, 1);
  assert.equal(vault.totals.entries, 1);
  vault.database.exec('DROP TRIGGER fail');
  const ok = await committer.submit(sub('a', [{ amount: 2n }]));
  assert.equal(ok.kind === 'booked' && ok.receipts[0]!.seq, 1);
});
