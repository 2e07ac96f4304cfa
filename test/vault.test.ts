import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync, statSync, mkdirSync, copyFileSync } from 'node:fs';
import { fsyncAsync } from '../src/runtime/fs.ts';
import { join } from 'node:path';
import { Vault, SCHEMA_VERSION, MIGRATIONS, type VaultOpenOptions } from '../src/vault/vault.ts';
import { canonicalEntry } from '../src/brain/entry.ts';
import { TransparencyLog } from '../src/log/log.ts';
import { auditVault } from '../src/log/audit.ts';
import { sha256 } from '../src/runtime/crypto.ts';
import { openTestLog, testSigner, openRaw, tamper, auditFile } from './support/log.ts';
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
async function openCommitter(t: TestContext, options: GroupCommitOptions = {}, vaultOptions: VaultOpenOptions = {}) {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  const vault = await Vault.open(file, vaultOptions);
  const committer = new GroupCommitter(vault, options);
  t.after(async () => {
    await committer.close();
    vault.close();
  });
  return { vault, committer, file };
}

/** One event whose evidence is `bytes` long: a group that writes at least that much WAL. */
const bigEvidence = (i: number, bytes: number): Submission => ({ subject: 'dev:a', evidence: new Uint8Array(bytes).fill(i), events: [{ amount: BigInt(i + 1), ref: null, beneficiary: 'dev:a' }] });

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

test('commit wait: a group waits for requests announced on their way, and only for them', async (t) => {
  const groups: number[] = [];
  // A long wait, so that "did not wait" cannot be mistaken for a short wait even on a loaded machine.
  const { committer } = await openCommitter(t, { commitWaitMs: 5_000, commitWaitEvents: 3, onCommitted: (b) => groups.push(b.entries.length) });
  const settledBefore = async (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  // Nobody on the way: commits at once.
  assert.equal(await settledBefore(committer.submit(sub('a', [{ amount: 1n }])), 2_500), true);
  assert.deepEqual(groups, [1]);

  // One on the way: the group waits for it and both share one commit.
  const coming = committer.expect();
  const first = committer.submit(sub('b', [{ amount: 2n }]));
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(groups, [1], 'held back while a request is on its way');
  await Promise.all([first, coming.submit(sub('c', [{ amount: 3n }]))]);
  assert.deepEqual(groups, [1, 2]);

  // One on the way that gives up (a bad signature, say): the group goes at once.
  const quitter = committer.expect();
  const alone = committer.submit(sub('d', [{ amount: 4n }]));
  await new Promise((r) => setTimeout(r, 30));
  quitter.cancel();
  quitter.cancel(); // final: a second cancel does not count twice
  assert.equal(await settledBefore(alone, 2_500), true);
  assert.deepEqual(groups, [1, 2, 1]);
  // Had it counted twice, nobody would be on the way for the next one: it would not wait.
  const next = committer.expect();
  const held = committer.submit(sub('f', [{ amount: 8n }]));
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(groups, [1, 2, 1], 'held back: the double cancel counted once');
  next.cancel();
  await held;
  assert.deepEqual(groups, [1, 2, 1, 1]);

  // A group that holds commitWaitEvents goes without waiting for the rest.
  const late = committer.expect();
  assert.equal(await settledBefore(committer.submit(sub('e', [{ amount: 5n }, { amount: 6n }, { amount: 7n }])), 2_500), true);
  assert.deepEqual(groups, [1, 2, 1, 1, 3]);
  late.cancel();
});

test('commit wait: a request that never arrives holds a group back commitWaitMs at most', async (t) => {
  const groups: number[] = [];
  const { committer } = await openCommitter(t, { commitWaitMs: 40, onCommitted: (b) => groups.push(b.entries.length) });
  const never = committer.expect();
  const t0 = performance.now();
  await committer.submit(sub('a', [{ amount: 1n }]));
  assert.ok(performance.now() - t0 >= 35, 'it waited');
  assert.deepEqual(groups, [1]);
  never.cancel();
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

test('idempotency, property: bursts of new refs, retries and conflicts get the answers of booking one request at a time, however they are grouped', async () => {
  // Refs booked by an earlier group are not looked up first: the insert meets
  // them, the transaction rolls back (tree included) and the group is planned
  // again. The model books one submission at a time, in submission order.
  const submission = fc.record({
    subject: fc.constantFrom('a', 'b'),
    events: fc.uniqueArray(fc.record({ ref: fc.option(fc.constantFrom('r0', 'r1', 'r2', 'r3', 'r4'), { freq: 5 }), amount: fc.constantFrom(1n, 2n), other: fc.boolean() }), {
      minLength: 1, maxLength: 3, selector: (e) => e.ref ?? Symbol('no ref'),
    }),
  });
  await fc.assert(fc.asyncProperty(fc.array(fc.array(submission, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }), async (bursts) => {
    const tl = await openTestLog();
    try {
      const booked = new Map<string, { amount: bigint; beneficiary: string; seq: number }>();
      let next = 0;
      for (const burst of bursts) {
        const subs = burst.map((s) => sub(s.subject, s.events.map((e) => ({ amount: e.amount, ref: e.ref, beneficiary: e.other ? 'z' : s.subject }))));
        const outcomes = await Promise.all(subs.map((s) => tl.committer.submit(s)));
        subs.forEach((s, k) => {
          const conflict = s.events.findIndex((e) => {
            const prior = e.ref === null ? undefined : booked.get(`${s.subject} ${e.ref}`);
            return prior !== undefined && (prior.amount !== e.amount || prior.beneficiary !== e.beneficiary);
          });
          if (conflict >= 0) {
            assert.deepEqual(outcomes[k], { kind: 'conflict', index: conflict, ref: s.events[conflict]!.ref });
            return;
          }
          let fresh = 0;
          const seqs = s.events.map((e) => {
            const prior = e.ref === null ? undefined : booked.get(`${s.subject} ${e.ref}`);
            if (prior) return prior.seq;
            fresh++;
            if (e.ref !== null) booked.set(`${s.subject} ${e.ref}`, { amount: e.amount, beneficiary: e.beneficiary, seq: next });
            return next++;
          });
          const out = outcomes[k]!;
          assert.equal(out.kind, fresh > 0 ? 'booked' : 'replayed');
          assert.deepEqual((out as { receipts: Array<{ seq: number }> }).receipts.map((r) => r.seq), seqs);
        });
      }
      assert.equal(tl.vault.size, next);
      assert.equal(tl.log.tree.size, next);
      await tl.close();
      assert.deepEqual((await auditFile(tl)).problems, []);
    } finally {
      await tl.cleanup();
    }
  }), { numRuns: 150 });
});

test('a retry of a ref booked in an earlier group rolls that group back once and books the rest of it in one commit', async (t) => {
  const commits: number[] = [];
  const { vault, committer } = await openCommitter(t, { onCommitted: (b) => commits.push(b.entries.length) });
  const first = await committer.submit(sub('dev', [{ amount: 5n, ref: 'x' }]));
  // One group: a new event, the retry, a conflicting retry, another new event.
  const [a, retry, conflict, b] = await Promise.all([
    committer.submit(sub('dev', [{ amount: 1n, ref: 'n1' }])),
    committer.submit(sub('dev', [{ amount: 5n, ref: 'x' }])),
    committer.submit(sub('dev', [{ amount: 6n, ref: 'x' }])),
    committer.submit(sub('other', [{ amount: 2n }])),
  ]);
  assert.deepEqual(commits, [1, 2]);
  assert.equal(retry!.kind, 'replayed');
  assert.deepEqual((retry as { receipts: unknown }).receipts, (first as { receipts: unknown }).receipts);
  assert.deepEqual(conflict, { kind: 'conflict', index: 0, ref: 'x' });
  assert.deepEqual([a, b].map((o) => o!.kind === 'booked' && o!.receipts[0]!.seq), [1, 2]);
  assert.equal(vault.size, 3);
  assert.equal(vault.totals.amount, 8n);
  // A request that conflicts both with this group (n3, at index 1) and with a
  // ref booked before (x, at index 0) is told about the first.
  const [, both] = await Promise.all([
    committer.submit(sub('dev', [{ amount: 5n, ref: 'n3' }])),
    committer.submit(sub('dev', [{ amount: 6n, ref: 'x' }, { amount: 9n, ref: 'n3' }])),
  ]);
  assert.deepEqual(both, { kind: 'conflict', index: 0, ref: 'x' });
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

test('a v4 vault migrates to v5: every entry keeps its evidence, nonces stay live, and the audit is clean', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  // Build a v4 vault the way v4 wrote it: evidence keyed by hash, shared by a
  // batch (seq 0–2) and by two non-adjacent requests (seq 3 and 5, like a reused JWT).
  const db = await openRaw(file);
  for (const m of MIGRATIONS.slice(0, 4)) db.exec(m);
  const canonical = (seq: number, evidence: string) => canonicalEntry({ v: 1, seq, ts: 1, subject: 's', beneficiary: 's', amount: 10n, split: refSplit(10n, 6000, 3000), policy: '6000/3000/1000', ref: `r${seq}`, evidence });
  const evidences = ['batch', 'batch', 'batch', 'jwt', 'other', 'jwt'].map((e) => enc.encode(`evidence ${e}`));
  const ins = db.prepare('INSERT INTO entries (seq, subject, ref, canonical, leaf, evidence) VALUES (?, ?, ?, ?, ?, ?)');
  const insEv = db.prepare('INSERT OR IGNORE INTO evidence (hash, bytes) VALUES (?, ?)');
  evidences.forEach((ev, seq) => {
    const h = sha256(ev);
    const c = canonical(seq, hex(h));
    insEv.run(h, ev);
    ins.run(seq, 's', `r${seq}`, c, refLeafHash(enc.encode(c)), h);
  });
  db.exec(`UPDATE totals SET entries = 6, amount = '60', creator = '36', pool = '18', fee = '6';
    INSERT INTO accounts VALUES ('s', '36', 6);
    INSERT INTO meta (key, value) VALUES ('policy', '6000/3000/1000');
    INSERT INTO nonces (key, expires) VALUES ('did:key:z nonce-live', ${Date.now() + 60_000}), ('did:key:z nonce-old', 5);
    PRAGMA user_version = 4;`);
  db.close();

  const vault = await Vault.open(file);
  t.after(() => vault.close());
  evidences.forEach((ev, seq) => assert.deepEqual(vault.evidence(seq), ev, `evidence of seq ${seq}`));
  assert.deepEqual(vault.liveNonces(Date.now()).map((n) => n.key), ['did:key:z nonce-live']);
  const log = new TransparencyLog(vault, 'test.example/log', testSigner());
  log.open();
  const report = auditVault(vault, { keyName: log.signer.name, publicKey: log.signer.publicKey });
  assert.deepEqual(report.problems, []);
});

test('expired nonces are pruned a second at a time as commits go by; live ones stay for the restart', async (t) => {
  const { vault } = await openCommitter(t);
  const t0 = 1_780_000_000_000;
  const nonce = (i: number, expires: number) => ({ key: `did:key:z n${i}`, expires });
  vault.transaction(() => vault.recordNonces([nonce(0, t0 + 1000), nonce(1, t0 + 2000), nonce(2, t0 + 3000), nonce(3, t0 + 400_000)], t0));
  const count = () => vault.liveNonces(0).length;
  assert.equal(count(), 4);
  vault.transaction(() => vault.recordNonces([], t0 + 1500));
  assert.deepEqual(vault.liveNonces(0).map((n) => n.key), ['did:key:z n1', 'did:key:z n2', 'did:key:z n3']);
  vault.transaction(() => vault.recordNonces([], t0 + 2100)); // under a second since the last sweep: kept for the next one
  assert.equal(count(), 3);
  vault.transaction(() => vault.recordNonces([], t0 + 3500));
  assert.deepEqual(vault.liveNonces(0).map((n) => n.key), ['did:key:z n3']);
});

test('evidence is stored once per run of entries and the audit catches a missing or altered piece', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  await tl.book(5, 'a');
  await tl.committer.submit({ subject: 'b', events: [{ amount: 9n, beneficiary: 'b', ref: null }], evidence: enc.encode('other evidence') });
  await tl.book(2, 'a');
  const runs = tl.vault.database.prepare('SELECT first_seq FROM evidence ORDER BY first_seq');
  // book() always sends the same evidence bytes: 0–4 and 6–7 are runs of it, 5 is its own.
  assert.deepEqual(runs.all((s) => s.int(0)), [0, 5, 6]);
  runs.finalize();
  for (let seq = 0; seq < 8; seq++) assert.ok(tl.vault.evidence(seq), `seq ${seq}`);
  tl.log.cut();
  await tl.close();
  assert.deepEqual((await auditFile(tl)).problems, []);

  await tamper(tl.file, "UPDATE evidence SET bytes = x'00' WHERE first_seq = 5; DELETE FROM evidence WHERE first_seq = 6;");
  const report = await auditFile(tl);
  assert.ok(report.problems.includes('entry 5: evidence does not hash to ' + hex(sha256(enc.encode('other evidence')))), report.problems.join('\n'));
  assert.ok(report.problems.some((p) => p.startsWith('entry 6: its authentication evidence is missing')), report.problems.join('\n'));
});

test('a commit is answered only after its fsync, and a checkpoint never covers rows that are not fsynced yet', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  await tl.book(3);
  tl.log.cut();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const realSync = tl.vault.syncCommitted.bind(tl.vault);
  // Hold the thread-pool fsync back (the real one runs once the gate opens).
  tl.vault.syncCommitted = () => gate.then(() => realSync());
  let answered = false;
  const booking = tl.book(4).then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(tl.vault.size, 7, 'the rows are committed');
  assert.equal(answered, false, 'but nobody is told before the fsync');
  assert.equal(tl.vault.durableSize, 3);
  assert.equal(tl.log.cut(), undefined, 'no checkpoint over rows a power cut could take');
  release();
  await booking;
  assert.equal(tl.vault.durableSize, 7);
  assert.equal(tl.log.cut()!.size, 7);
});

test('background checkpoints: past the WAL threshold they wait for enough group commits, past the cap for none; onFsync sees each fsync', async (t) => {
  const threshold = 16 * 1024;
  const fsyncs: Array<{ kind: string; seconds: number }> = [];
  const { vault, committer } = await openCommitter(t, {}, { checkpointWalBytes: threshold, checkpointCommits: 4, onFsync: (seconds, kind) => fsyncs.push({ kind, seconds }) });
  // Which calls (one after each group commit) paid a checkpoint.
  const paid: number[] = [];
  let calls = 0;
  const real = vault.checkpointInBackground.bind(vault);
  vault.checkpointInBackground = () => {
    const paying = real();
    calls++;
    if (paying) paid.push(calls);
    return paying;
  };
  // Each group alone writes more WAL than the threshold (its evidence), so only the commit count holds them back.
  for (let i = 0; i < 12; i++) await committer.submit(bigEvidence(i, threshold + 1024));
  await committer.drain();
  assert.deepEqual(paid, [4, 8, 12], `checkpoints after every 4th commit (${calls} calls)`);
  // One group past 16 times the threshold is checkpointed at once.
  await committer.submit(bigEvidence(12, 17 * threshold));
  await committer.drain();
  assert.deepEqual(paid, [4, 8, 12, 13]);
  assert.equal(vault.size, 13);
  // One fsync per group commit, one per checkpoint (its database pages), each timed.
  assert.equal(fsyncs.filter((f) => f.kind === 'commit').length, 13);
  assert.equal(fsyncs.filter((f) => f.kind === 'checkpoint').length, 4);
  assert.ok(fsyncs.every((f) => f.seconds > 0 && f.seconds < 60), JSON.stringify(fsyncs));
});

test('a transaction off the committer path checkpoints the WAL itself only past the cap, not while the committer lets it grow', async (t) => {
  const threshold = 16 * 1024;
  const { vault, committer, file } = await openCommitter(t, {}, { checkpointWalBytes: threshold });
  // The committer's own checkpoints are held off here, as they are for its first 15 commits past the threshold.
  vault.checkpointInBackground = () => undefined;
  // In WAL mode only a checkpoint writes the database file.
  const dbBytes = () => statSync(file).size;
  for (let i = 0; i < 3; i++) await committer.submit(bigEvidence(i, threshold + 1024));
  const before = dbBytes();
  assert.ok(vault.addDevice('did:key:zBetween', null));
  assert.equal(dbBytes(), before, 'three times the threshold: an enrolment does not pay a checkpoint (and its fsync) on the event loop');
  await committer.submit(bigEvidence(3, 16 * threshold));
  assert.equal(dbBytes(), before);
  assert.ok(vault.addDevice('did:key:zPastTheCap', null));
  assert.ok(dbBytes() > before, 'past the cap it checkpoints');
});

test('a failed fsync stops the committer for good: that group and everything after it is refused', async (t) => {
  const failures: unknown[] = [];
  const { vault, committer } = await openCommitter(t, { onSyncFailure: (e) => failures.push(e) });
  await committer.submit(sub('a', [{ amount: 1n }]));
  // EIO cannot be provoked on this machine's disk without root tools: stand in for the thread-pool fsync.
  const realSync = vault.syncCommitted.bind(vault);
  vault.syncCommitted = () => realSync().then(() => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })));
  const results = await Promise.allSettled([committer.submit(sub('a', [{ amount: 2n }])), committer.submit(sub('b', [{ amount: 3n }]))]);
  assert.ok(results.every((r) => r.status === 'rejected' && /vault write failed: EIO/.test(String(r.reason))), JSON.stringify(results));
  assert.equal(failures.length, 1);
  vault.syncCommitted = realSync;
  await assert.rejects(committer.submit(sub('c', [{ amount: 4n }])), /vault write failed: EIO/);
});

test('WAL appends held back by the VFS reach the file before the fsync that makes them durable', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  await tl.book(2);
  const copyRows = async (name: string) => {
    // What a power cut right now could leave: the files as the kernel has them.
    const dir = join(tl.dir, name);
    mkdirSync(dir);
    for (const f of ['vault.db', 'vault.db-wal']) if (existsSync(join(tl.dir, f))) copyFileSync(join(tl.dir, f), join(dir, f));
    const db = await openRaw(join(dir, 'vault.db'));
    try {
      const s = db.prepare('SELECT count(*) FROM entries');
      return s.get((r) => r.int(0));
    } finally {
      db.close();
    }
  };
  assert.equal(await copyRows('a'), 2);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const realSync = tl.vault.syncCommitted.bind(tl.vault);
  tl.vault.syncCommitted = () => gate.then(() => realSync());
  const booking = tl.book(3);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(tl.vault.size, 5, 'committed in SQLite');
  assert.equal(await copyRows('b'), 2, 'but its WAL frames are still held back');
  release();
  await booking;
  assert.equal(await copyRows('c'), 5, 'written out before the fsync');
});

test('after a failed fsync the vault refuses every later transaction and sync, and its durable size stays put', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  let fail = false;
  // EIO cannot be provoked on this machine's disk: the thread-pool fsync is replaced by one that can fail.
  const vault = await Vault.open(join(tmp.dir, 'vault.db'), {
    fsyncAsync: (fd) => (fail ? Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })) : fsyncAsync(fd)),
  });
  t.after(() => vault.close());
  const committer = new GroupCommitter(vault);
  await committer.submit(sub('a', [{ amount: 1n }]));
  assert.equal(vault.durableSize, 1);
  fail = true;
  await assert.rejects(committer.submit(sub('a', [{ amount: 2n }])), /EIO/);
  assert.equal(vault.size, 2, 'the row is in SQLite');
  assert.equal(vault.durableSize, 1, 'but never counted as durable');
  fail = false;
  await assert.rejects(vault.syncCommitted(), /EIO/, 'a later fsync that succeeds proves nothing about the lost pages');
  assert.throws(() => vault.addDevice('did:key:z6Mkafter', null), /stopped after a failed fsync/);
  await committer.close();
});
