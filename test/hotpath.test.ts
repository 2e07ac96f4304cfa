import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sha256, leafHashes, hashPairs, merkleRoot, splitAmounts } from '../src/hotpath/hotpath.ts';
import { refLeafHash, refNodeHash, refRoot, refSha256, refSplit, hex, unhex, concat } from './support/reference.ts';
import { loadVectors } from './support/vectors.ts';

const nodeSha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const u64 = fc.bigInt({ min: 1n, max: 2n ** 64n - 1n });
// fast-check keeps generated arrays 'small' (≤ 10 items) unless told otherwise:
// multi-block messages need size 'max'.

interface MerkleCase { type: string; leaf?: string; left?: string; right?: string; leaves?: string[]; expected?: string; treeSize?: number }
const merkle = loadVectors<MerkleCase>('rfc6962-merkle.json');

test('RFC 6962 vectors: leaf hashes, node hash, reference roots', () => {
  let checked = 0;
  for (const c of merkle.cases) {
    if (c.type === 'leafHash') {
      assert.equal(hex(leafHashes([unhex(c.leaf!)])), c.expected);
      checked++;
    } else if (c.type === 'root') {
      const leaves = leafHashes(c.leaves!.map(unhex));
      assert.equal(hex(merkleRoot(leaves, c.treeSize!, true)), c.expected, c.treeSize + ' simd');
      assert.equal(hex(merkleRoot(leaves, c.treeSize!, false)), c.expected, c.treeSize + ' scalar');
      checked++;
    } else if (c.type === 'emptyRoot') {
      assert.equal(hex(sha256(new Uint8Array(0))), c.expected);
      checked++;
    }
  }
  assert.equal(checked, 11);
});

test('the RFC 6962 nodeHash vector (left and right are not 32 bytes) matches the reference', () => {
  // The vector's children are 4-byte strings; our pair API takes 32-byte
  // children, so it is checked through the reference only.
  const c = merkle.cases.find((x) => x.type === 'nodeHash')!;
  assert.equal(hex(refNodeHash(unhex(c.left!), unhex(c.right!))), c.expected);
});

test('SHA-256: WASM = reference = node:crypto for random inputs (all padding boundaries)', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 300, size: 'max' }), (data) => {
    const w = hex(sha256(data));
    assert.equal(w, hex(refSha256(data)));
    assert.equal(w, nodeSha(data));
  }), { numRuns: 500 });
});

test('leaf hashes in one batch: 4-lane SIMD = scalar = per-entry reference', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 400, size: 'max' }), { maxLength: 40, size: 'max' }), (entries) => {
    const batch = leafHashes(entries);
    assert.equal(batch.length, entries.length * 32);
    assert.deepEqual(leafHashes(entries, false), batch);
    entries.forEach((e, i) => assert.equal(hex(batch.subarray(32 * i, 32 * i + 32)), hex(refLeafHash(e))));
  }), { numRuns: 200 });
});

test('4-lane leaf hashes across every padding boundary, lanes of different block counts side by side', () => {
  // Lane lengths len, len + 1, len + 9 and len + 64, rotated through the four
  // lanes: the 0x80 byte and the bit length fall in different blocks for each,
  // and each lane in turn runs a block longer than the others.
  const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 37 + seed) & 0xff);
  for (let len = 0; len <= 200; len++) {
    const lengths = [len, len + 1, len + 9, len + 64];
    for (let turn = 0; turn < 4; turn++) {
      const entries = lengths.map((_, lane) => bytes(lengths[(lane + turn) % 4]!, lane));
      const batch = leafHashes(entries);
      entries.forEach((e, i) => assert.equal(hex(batch.subarray(32 * i, 32 * i + 32)), hex(refLeafHash(e)), `length ${e.length}, lane ${i}`));
    }
  }
});

test('leaf hashes of text (encoded in WASM memory) = of its UTF-8 bytes, mixed in one batch', () => {
  const utf8 = new TextEncoder();
  fc.assert(fc.property(fc.array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 200, size: 'max' }), fc.uint8Array({ maxLength: 300, size: 'max' })), { maxLength: 30, size: 'max' }), (entries) => {
    const batch = leafHashes(entries);
    entries.forEach((e, i) => assert.equal(hex(batch.subarray(32 * i, 32 * i + 32)), hex(refLeafHash(typeof e === 'string' ? utf8.encode(e) : e))));
  }), { numRuns: 200 });
});

test('node hashes: 4-lane SIMD = scalar = reference', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 23 }), fc.integer({ min: 0, max: 2 ** 31 }), (count, seed) => {
    const level = new Uint8Array(count * 64).map((_, i) => (i * 131 + seed) & 0xff);
    const simd = hashPairs(level, count, true);
    const scalar = hashPairs(level, count, false);
    assert.deepEqual(simd, scalar);
    for (let i = 0; i < count; i++) {
      const l = level.subarray(64 * i, 64 * i + 32);
      const r = level.subarray(64 * i + 32, 64 * i + 64);
      assert.equal(hex(simd.subarray(32 * i, 32 * i + 32)), hex(refNodeHash(l, r)));
    }
  }), { numRuns: 100 });
});

test('Merkle roots: WASM (SIMD and scalar) = recursive RFC 6962 reference, every size to 70 and random ones', () => {
  const check = (n: number) => {
    const leaves = Array.from({ length: n }, (_, i) => refLeafHash(new TextEncoder().encode(`leaf ${i}`)));
    const flat = concat(...leaves);
    const expected = hex(refRoot(leaves));
    assert.equal(hex(merkleRoot(flat, n, true)), expected, `simd n=${n}`);
    assert.equal(hex(merkleRoot(flat, n, false)), expected, `scalar n=${n}`);
  };
  for (let n = 1; n <= 70; n++) check(n);
  fc.assert(fc.property(fc.integer({ min: 71, max: 3000 }), (n) => check(n)), { numRuns: 20 });
});

test('splits: edge amounts', () => {
  const edges = [1n, 2n, 9n, 10n, 99n, 100n, 9999n, 10000n, 10001n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n];
  const got = splitAmounts(edges, 6000, 3000);
  edges.forEach((a, i) => {
    assert.deepEqual(got[i], refSplit(a, 6000, 3000), `amount ${a}`);
    assert.equal(got[i]!.creator + got[i]!.pool + got[i]!.fee, a);
  });
  assert.deepEqual(splitAmounts([1n], 6000, 3000)[0], { creator: 0n, pool: 0n, fee: 1n });
  assert.deepEqual(splitAmounts([2n ** 64n - 1n], 6000, 3000)[0], {
    creator: 11068046444225730969n, pool: 5534023222112865484n, fee: 1844674407370955162n,
  });
});

test('splits: random u64 amounts and random policies match the definition exactly', () => {
  fc.assert(fc.property(fc.array(u64, { minLength: 1, maxLength: 64, size: 'max' }), fc.integer({ min: 0, max: 10000 }), fc.integer({ min: 0, max: 10000 }), (amounts, c, p) => {
    fc.pre(c + p <= 10000);
    const got = splitAmounts(amounts, c, p);
    amounts.forEach((a, i) => {
      const want = refSplit(a, c, p);
      assert.deepEqual(got[i], want);
      assert.ok(want.fee >= 0n);
    });
  }), { numRuns: 500 });
});

test('splits: every amount below 20,000 matches the definition (dust boundaries)', () => {
  const amounts = Array.from({ length: 19_999 }, (_, i) => BigInt(i + 1));
  const got = splitAmounts(amounts, 6000, 3000);
  amounts.forEach((a, i) => assert.deepEqual(got[i], refSplit(a, 6000, 3000)));
});
