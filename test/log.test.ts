import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadVectors } from './support/vectors.ts';
import { openTestLog, testSigner, tamper, auditFile } from './support/log.ts';
import { refRoot, refLeafHash, refSha256, concat } from './support/reference.ts';
import { MerkleTree } from '../src/log/tree.ts';
import { Vault } from '../src/vault/vault.ts';
import { verifyInclusion, verifyConsistency, verifyNote, noteKeyId, parseVerifierKey, verifierKey, parseNote, parseCheckpointBody, verifyProofBundle, leafHash } from '../src/log/verify.ts';
import { signNote, TransparencyLog } from '../src/log/log.ts';
import { GroupCommitter } from '../src/vault/group-commit.ts';
import { fsyncAsync } from '../src/runtime/fs.ts';
import { tempDir } from './support/node.ts';
import { createPrivateKey, sign } from 'node:crypto';
import { nodeFs, patchNodeFs } from './support/fs-patch.ts';
import { join } from 'node:path';

const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('RFC 6962 / transparency-dev inclusion probes (valid and invalid) through the standalone verifier', () => {
  const cases = loadVectors<any>('rfc6962-merkle.json').cases.filter((c) => c.type === 'inclusion');
  assert.equal(cases.length, 103);
  for (const c of cases) {
    const leaf = c.leafHash !== undefined ? unhex(c.leafHash) : leafHash(unhex(c.leaf));
    const got = verifyInclusion(BigInt(c.leafIndex), BigInt(c.treeSize), leaf, c.proof.map(unhex), unhex(c.root));
    assert.equal(got, c.valid, `${c.desc} (${c.source})`);
  }
});

test('RFC 6962 / transparency-dev consistency probes (valid and invalid)', () => {
  const cases = loadVectors<any>('rfc6962-merkle.json').cases.filter((c) => c.type === 'consistency');
  assert.equal(cases.length, 103);
  for (const c of cases) {
    const got = verifyConsistency(BigInt(c.size1), BigInt(c.size2), unhex(c.root1), unhex(c.root2), c.proof.map(unhex));
    assert.equal(got, c.valid, `${c.desc} (${c.source})`);
  }
});

test('C2SP signed-note vectors: key IDs, verifier keys, signatures, deterministic re-signing', () => {
  const v = loadVectors<any>('signed-note.json');
  for (const k of v.cases.filter((c) => c.type === 'verifierKey')) {
    const parsed = parseVerifierKey(k.vkey)!;
    assert.ok(parsed, k.vkey);
    assert.equal(hex(noteKeyId(k.name, unhex(k.publicKeyHex))), k.keyId);
    assert.equal(verifierKey(k.name, unhex(k.publicKeyHex)), k.vkey);
  }
  let notes = 0;
  for (const c of v.cases.filter((x) => x.type === 'signedNote' || x.type === 'checkpoint')) {
    for (const vk of c.verifierKeys) {
      const key = parseVerifierKey(vk)!;
      const expected = c.valid !== false && (!c.expect?.verified || c.expect.verified.some((id: string) => vk.startsWith(`${id}+`) || vk.startsWith(id)));
      assert.equal(verifyNote(c.note, key.name, key.publicKey), expected, `${c.desc} / ${key.name}`);
    }
    notes++;
  }
  assert.ok(notes >= 6);
  // PeterNeumann's signature is deterministic: signing the text with the skey seed reproduces the note.
  const skey = v.cases.find((c) => c.type === 'signerKey');
  const note = v.cases.find((c) => c.type === 'signedNote' && c.verifierKeys.length === 1 && c.valid);
  const priv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(skey.seedHex, 'hex')]), format: 'der', type: 'pkcs8' });
  const pub = parseVerifierKey(skey.matchesVkey)!;
  const signed = signNote(note.text, { name: skey.name, publicKey: pub.publicKey, sign: (m) => new Uint8Array(sign(null, m, priv)) });
  assert.equal(signed, note.note);
  for (const c of v.cases.filter((x) => x.type === 'checkpointBody')) {
    const body = parseCheckpointBody(c.text)!;
    assert.ok(body, c.desc);
    if (c.checkpoint) {
      assert.equal(body.origin, c.checkpoint.origin);
      assert.equal(body.size, BigInt(c.checkpoint.treeSize));
    }
  }
  assert.equal(parseNote('no signatures\n'), undefined);
});

test('property: built incrementally in random batches, the stored tree matches the reference root at every size; every proof verifies and any flipped byte fails', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  const batches = fc.sample(fc.integer({ min: 1, max: 70 }), { numRuns: 30, seed: 42 });
  const leaves: Uint8Array[] = [];
  for (const b of batches) {
    await tl.book(b);
    for (let i = leaves.length; i < tl.vault.size; i++) leaves.push(tl.vault.entry(i)!.leaf);
    assert.equal(hex(tl.log.tree.root()), hex(refRoot(leaves)), `size ${leaves.length}`);
  }
  const n = leaves.length;
  fc.assert(fc.property(fc.integer({ min: 1, max: n }), fc.nat(), fc.nat(), (size, i, flip) => {
    const m = i % size;
    const root = refRoot(leaves.slice(0, size));
    const path = tl.log.tree.inclusionProof(m, size);
    assert.ok(verifyInclusion(m, size, leaves[m]!, path, root));
    assert.ok(path.length <= Math.ceil(Math.log2(size)) + 1);
    if (path.length > 0) {
      const bad = path.map((p) => p.slice());
      bad[flip % bad.length]![flip % 32]! ^= 1 << (flip % 8);
      assert.equal(verifyInclusion(m, size, leaves[m]!, bad, root), false);
    }
    const badLeaf = leaves[m]!.slice();
    badLeaf[flip % 32]! ^= 1;
    assert.equal(verifyInclusion(m, size, badLeaf, path, root), false);
  }), { numRuns: 300 });
  fc.assert(fc.property(fc.integer({ min: 1, max: n }), fc.integer({ min: 1, max: n }), fc.nat(), (a, b, flip) => {
    const [m, k] = a <= b ? [a, b] : [b, a];
    const proof = tl.log.tree.consistencyProof(m, k);
    const r1 = refRoot(leaves.slice(0, m));
    const r2 = refRoot(leaves.slice(0, k));
    assert.ok(verifyConsistency(m, k, r1, r2, proof), `${m} -> ${k}`);
    if (proof.length > 0) {
      const bad = proof.map((p) => p.slice());
      bad[flip % bad.length]![flip % 32]! ^= 1;
      assert.equal(verifyConsistency(m, k, r1, r2, bad), false);
    }
  }), { numRuns: 300 });
});

test('a checkpoint cut in the background: its fsync off the event loop, the latest only once durable, one cut at a time, nothing published after a failed fsync', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  // Thread-pool fsyncs pass through until `hold`; then they wait for release(), and fail with `fail`.
  let hold = false;
  let fail = false;
  const held: Array<() => void> = [];
  const release = () => held.splice(0).forEach((go) => go());
  const vault = await Vault.open(join(tmp.dir, 'vault.db'), {
    fsyncAsync: (fd) => (hold ? new Promise((resolve, reject) => held.push(() => (fail ? reject(new Error('EIO')) : fsyncAsync(fd).then(resolve, reject)))) : fsyncAsync(fd)),
  });
  const signer = testSigner();
  const log = new TransparencyLog(vault, signer.name, signer);
  log.open();
  const committer = new GroupCommitter(vault, { integrate: (leaves, n) => log.tree.integrate(leaves, n) });
  t.after(async () => {
    release();
    await committer.close();
    vault.close();
  });
  const book = (n: number) => committer.submit({ subject: 'dev', evidence: new TextEncoder().encode('e'), events: Array.from({ length: n }, () => ({ amount: 10n, beneficiary: 'dev', ref: null })) });
  await book(5);

  // Count the fsyncs made on the event loop meanwhile.
  const fsyncSync = nodeFs.fsyncSync;
  let onLoop = 0;
  t.after(patchNodeFs({
    fsyncSync: (fd) => {
      onLoop++;
      fsyncSync(fd);
    },
  }));

  hold = true;
  const cutting = log.cutInBackground();
  assert.equal(log.cutting, true);
  const meanwhile = log.cutInBackground();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(held.length, 1, 'the row is fsynced on the thread pool');
  assert.equal(log.latest()!.size, 0, 'not the latest before its row is durable');
  assert.throws(() => log.cut(), /background/);
  release();
  const cp = await cutting;
  assert.equal(cp!.size, 5);
  assert.equal(log.latest()!.size, 5);
  assert.ok(verifyNote(cp!.note, signer.name, signer.publicKey));
  await meanwhile;
  assert.equal(log.cutting, false);
  assert.equal(await meanwhile, undefined, 'a cut asked for meanwhile runs after it: no growth, no checkpoint');
  assert.deepEqual(log.checkpoints(Number.MAX_SAFE_INTEGER, 10).map((c) => c.size), [5, 0]);

  hold = false;
  await book(3);
  hold = true;
  fail = true;
  const failing = log.cutInBackground();
  await new Promise((resolve) => setImmediate(resolve));
  release();
  await assert.rejects(failing, /EIO/);
  assert.equal(log.latest()!.size, 5, 'a checkpoint whose fsync failed is never the latest');
  assert.equal(onLoop, 0, 'no fsync on the event loop');
});

test('checkpoints: cut only on growth, signed, and consistent with each other; proof bundles verify offline', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  assert.equal(tl.log.latest()!.size, 0, 'a new log has the empty checkpoint');
  assert.equal(tl.log.cut(), undefined, 'no growth, no checkpoint');
  await tl.book(5);
  const c1 = tl.log.cut()!;
  await tl.book(9);
  const c2 = tl.log.cut()!;
  assert.deepEqual([c1.size, c2.size], [5, 14]);
  for (const cp of [c1, c2]) assert.ok(verifyNote(cp.note, tl.signer.name, tl.signer.publicKey));
  assert.ok(verifyConsistency(5, 14, c1.root, c2.root, tl.log.consistency(5, 14).map(unhex)));
  const bundle = tl.log.proofBundle(3, 5);
  assert.deepEqual(verifyProofBundle(bundle).ok, true);
  assert.equal(verifyProofBundle(bundle, { name: tl.signer.name, publicKey: tl.signer.publicKey }).ok, true);
  const other = testSigner(tl.signer.name);
  assert.match(verifyProofBundle(bundle, { name: other.name, publicKey: other.publicKey }).error!, /another key/);
  const latest = tl.log.proofBundle(13);
  assert.equal(latest.treeSize, 14);
  assert.ok(verifyProofBundle(latest).ok);
  // Tampering with any part fails.
  assert.match(verifyProofBundle({ ...latest, entry: latest.entry.replace('"amount":"', '"amount":"1') }).error!, /leafHash/);
  assert.match(verifyProofBundle({ ...latest, checkpoint: latest.checkpoint.replace('\n14\n', '\n15\n') }).error!, /size|signature/);
  assert.match(verifyProofBundle({ ...latest, auditPath: [...latest.auditPath].reverse() }).error!, /audit path/);
  assert.match(verifyProofBundle({ ...latest, index: 12 }).error!, /seq/);
  await tl.book(1);
  assert.throws(() => tl.log.proofBundle(14), /not covered by a checkpoint/);
});

test('verify: a clean vault passes; a tampered amount, a deleted row, a forged checkpoint and a bad node are each caught', async (t) => {
  const setup = async () => {
    const tl = await openTestLog();
    await tl.book(40);
    tl.log.cut();
    await tl.book(3);
    tl.log.cut();
    await tl.close();
    return tl;
  };
  const clean = await setup();
  t.after(clean.cleanup);
  const ok = await auditFile(clean);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.entries, 43);
  assert.equal(ok.checkpoints, 3);

  const amount = await setup();
  t.after(amount.cleanup);
  await tamper(amount.file, `UPDATE entries SET canonical = replace(canonical, '"amount":"70"', '"amount":"71"') WHERE seq = 9`);
  const r1 = await auditFile(amount);
  assert.equal(r1.ok, false);
  assert.match(r1.first!, /^entry 9: /);

  const deleted = await setup();
  t.after(deleted.cleanup);
  await tamper(deleted.file, 'DELETE FROM entries WHERE seq = 17');
  const r2 = await auditFile(deleted);
  assert.match(r2.first!, /^entry 17: missing/);

  const forged = await setup();
  t.after(forged.cleanup);
  const forger = testSigner(forged.signer.name);
  const fakeRoot = new Uint8Array(32).fill(7);
  const fakeNote = signNote(`${forged.signer.name}\n43\n${Buffer.from(fakeRoot).toString('base64')}\n`, forger);
  await tamper(forged.file, `UPDATE checkpoints SET note = '${fakeNote}', root = x'${hex(fakeRoot)}' WHERE size = 43`);
  const r3 = await auditFile(forged);
  assert.match(r3.first!, /^checkpoint 43: /);
  assert.ok(r3.problems.some((p) => /signature .* does not verify/.test(p)));

  const node = await setup();
  t.after(node.cleanup);
  await tamper(node.file, `UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 1`);
  const r4 = await auditFile(node);
  assert.match(r4.first!, /tree node \(level 4, index 1\)/);
});

test('interior nodes are stored from level 4 up, the ones below hashed from their leaves; a v5 vault sheds its lower nodes and its proofs still verify', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  // Uneven batches: integrating meets old left siblings at every level, stored or not.
  for (const n of [5, 13, 1, 21]) await tl.book(n);
  tl.log.cut();
  const leaves = Array.from({ length: 40 }, (_, i) => tl.vault.entry(i)!.leaf);
  const nodesOf = (db: { prepare: Vault['database']['prepare'] }) => {
    const s = db.prepare('SELECT level, idx, hash FROM tree_nodes ORDER BY level, idx');
    const rows = s.all((r) => `${r.int(0)}:${r.int(1)}:${hex(r.blob(2))}`);
    s.finalize();
    return rows;
  };
  // Every complete node of level L ≥ 4 over 40 leaves, and nothing else.
  const expected = (fromLevel: number) => {
    const out: string[] = [];
    for (let level = fromLevel; 2 ** level <= 40; level++) {
      const w = 2 ** level;
      for (let i = 0; (i + 1) * w <= 40; i++) out.push(`${level}:${i}:${hex(refRoot(leaves.slice(i * w, (i + 1) * w)))}`);
    }
    return out;
  };
  assert.deepEqual(nodesOf(tl.vault.database), expected(4));
  await tl.close();

  // What v5 wrote: levels 1–3 too.
  const lower = expected(1).filter((r) => Number(r.split(':')[0]) < 4).map((r) => {
    const [level, idx, h] = r.split(':');
    return `(${level}, ${idx}, x'${h}')`;
  });
  await tamper(tl.file, `INSERT INTO tree_nodes (level, idx, hash) VALUES ${lower.join(', ')}; PRAGMA user_version = 5`);
  const again = await openTestLog({ dir: tl.dir, signer: tl.signer });
  t.after(again.cleanup);
  assert.deepEqual(nodesOf(again.vault.database), expected(4));
  const root = refRoot(leaves);
  for (let m = 0; m < 40; m++) assert.ok(verifyInclusion(m, 40, leaves[m]!, again.log.tree.inclusionProof(m, 40), root), `leaf ${m}`);
  for (let k = 1; k < 40; k++) assert.ok(verifyConsistency(k, 40, refRoot(leaves.slice(0, k)), root, again.log.tree.consistencyProof(k, 40)), `${k} -> 40`);
  // A node below level 4 over leaves that are not there yet is missing, not made up.
  assert.throws(() => again.log.tree.node(3, 5), /tree node \(3, 5\) is missing/);
  await again.close();
  assert.deepEqual((await auditFile(tl)).problems, []);
});

test('the audit folds the root of every checkpoint size into its one pass over the leaves: each is the reference root of that prefix', () => {
  const sizesOf = (n: number) => fc.tuple(fc.constant(n), fc.array(fc.integer({ min: 0, max: n }), { maxLength: 24, size: 'max' }));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }).chain(sizesOf), ([n, sizes]) => {
      const leaves = Array.from({ length: n }, (_, i) => refSha256(new Uint8Array([i & 0xff, i >> 8])));
      const r = MerkleTree.audit(concat(...leaves), n, () => undefined, { storedSize: 0, sizes });
      assert.equal(r.bad, undefined, 'with nothing stored, nothing is compared');
      sizes.forEach((k, i) => assert.equal(hex(r.roots[i]!), hex(refRoot(leaves.slice(0, k))), `root of ${k} of ${n}`));
    }),
    { numRuns: 300 },
  );
  assert.throws(() => MerkleTree.audit(new Uint8Array(64), 2, () => undefined, { sizes: [3] }), RangeError);
});

test('verify: a checkpoint signed by the node\'s own key over a wrong root is caught by the recomputed root', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  await tl.book(5);
  tl.log.cut();
  await tl.book(6);
  tl.log.cut();
  await tl.close();
  const wrong = new Uint8Array(32).fill(9);
  const note = signNote(`${tl.signer.name}\n5\n${Buffer.from(wrong).toString('base64')}\n`, tl.signer);
  await tamper(tl.file, `UPDATE checkpoints SET note = '${note}', root = x'${hex(wrong)}' WHERE size = 5`);
  const vault = await Vault.open(tl.file);
  const right = refRoot(Array.from({ length: 5 }, (_, i) => vault.entry(i)!.leaf));
  vault.close();
  // Read in chunks of one and of many checkpoints: the same findings.
  for (const checkpointChunk of [1, 4096]) {
    const r = await auditFile(tl, { checkpointChunk });
    assert.equal(r.checkpoints, 3);
    assert.deepEqual(r.problems, [
      `checkpoint 5: stored root ${hex(wrong)} is not the root of the first 5 leaves (${hex(right)})`,
      'checkpoint 5: note body does not commit to the recomputed root',
    ]);
  }
});

test('crash between ledger commit and tree update: the tree is repaired at start and verify is clean', async (t) => {
  const tl = await openTestLog();
  t.after(tl.cleanup);
  await tl.book(20);
  tl.log.cut();
  await tl.close();
  // Rows 11..19 committed, but the tree never learnt of them (as if the node died in between).
  await tamper(tl.file, "DELETE FROM tree_nodes WHERE (idx + 1) * (1 << level) > 11; UPDATE meta SET value = '11' WHERE key = 'tree_size'; DELETE FROM checkpoints WHERE size > 11");
  const broken = await auditFile(tl);
  assert.equal(broken.ok, false);
  assert.match(broken.first!, /tree: covers 11 leaves, the ledger has 20/);
  const again = await openTestLog({ dir: tl.dir, signer: tl.signer });
  assert.equal(again.log.tree.size, 20);
  const leaves = Array.from({ length: 20 }, (_, i) => again.vault.entry(i)!.leaf);
  assert.equal(hex(again.log.tree.root()), hex(refRoot(leaves)));
  again.log.cut();
  await again.close();
  assert.deepEqual((await auditFile(tl)).problems, []);
  assert.equal(hex(refLeafHash(new TextEncoder().encode('x'))), hex(leafHash(new TextEncoder().encode('x'))));
});
