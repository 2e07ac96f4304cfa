import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { parseAmount, parseLegacyAmount, MAX_AMOUNT } from '../src/brain/amount.ts';
import { parsePolicy, formatPolicy, DEFAULT_POLICY } from '../src/brain/policy.ts';
import { canonicalEntry, parseCanonicalEntry, type LedgerEntry } from '../src/brain/entry.ts';
import { splitBatch } from '../src/brain/split.ts';
import { refSplit } from './support/reference.ts';
import { receiptOf } from '../src/vault/group-commit.ts';
import { receiptJson, receiptsJson } from '../src/server/receipt-json.ts';

test('amounts: decimal strings 1..2^64-1 and safe JSON integers only', () => {
  assert.equal(parseAmount('1'), 1n);
  assert.equal(parseAmount('18446744073709551615'), MAX_AMOUNT);
  assert.equal(parseAmount(9007199254740991), 9007199254740991n);
  for (const bad of ['0', '-1', '01', '1.0', '1e3', ' 1', '1 ', '', '18446744073709551616', '99999999999999999999', '+1', '0x10', '١٢']) {
    assert.equal(parseAmount(bad), undefined, JSON.stringify(bad));
  }
  for (const bad of [0, -1, 1.5, 9007199254740992, Number.NaN, Infinity, null, true, [], {}, 10n]) {
    assert.equal(parseAmount(bad), undefined, String(bad));
  }
});

test('amounts: every digit string in range round-trips exactly', () => {
  fc.assert(fc.property(fc.bigInt({ min: 1n, max: MAX_AMOUNT }), (a) => {
    assert.equal(parseAmount(a.toString()), a);
  }));
});

test('legacy amounts: at most two decimals, converted exactly to minor units', () => {
  assert.equal(parseLegacyAmount(12.34), 1234n);
  assert.equal(parseLegacyAmount(0.1), 10n);
  assert.equal(parseLegacyAmount(1), 100n);
  assert.equal(parseLegacyAmount(0.29), 29n); // 0.29 * 100 = 28.999999999999996 in floats
  assert.equal(parseLegacyAmount(1.005), undefined);
  assert.equal(parseLegacyAmount(0), undefined);
  assert.equal(parseLegacyAmount(-1), undefined);
  assert.equal(parseLegacyAmount(1e21), undefined);
  fc.assert(fc.property(fc.integer({ min: 1, max: 10_000_000 }), (cents) => {
    assert.equal(parseLegacyAmount(cents / 100), BigInt(cents));
  }));
});

test('policy: parse, format, reject bad shares', () => {
  assert.deepEqual(parsePolicy('6000/3000/1000'), DEFAULT_POLICY);
  assert.equal(formatPolicy(DEFAULT_POLICY), '6000/3000/1000');
  for (const bad of ['6000/3000', '6000/3000/1001', '-1/5001/5000', '6000.0/3000/1000', 'a/b/c', '10000/0/0/0']) {
    assert.throws(() => parsePolicy(bad), Error, bad);
  }
  assert.deepEqual(parsePolicy('10000/0/0'), { creatorBp: 10000, poolBp: 0, feeBp: 0 });
});

test('splitBatch: shares add up and equal the definition for any policy', () => {
  fc.assert(fc.property(fc.array(fc.bigInt({ min: 1n, max: MAX_AMOUNT }), { minLength: 1, maxLength: 50, size: 'max' }), fc.integer({ min: 0, max: 10000 }), (amounts, c) => {
    const p = 10000 - c;
    const splits = splitBatch(amounts, { creatorBp: c, poolBp: p, feeBp: 0 });
    amounts.forEach((a, i) => assert.deepEqual(splits[i], refSplit(a, c, p)));
  }));
});

const entryArb: fc.Arbitrary<LedgerEntry> = fc.record({
  v: fc.constant(1 as const),
  seq: fc.maxSafeNat(),
  ts: fc.maxSafeNat(),
  // Any UTF-16 (controls, quotes, lone surrogates): each must be escaped as JCS does.
  subject: fc.string({ minLength: 1, unit: 'binary' }),
  beneficiary: fc.string({ minLength: 1, unit: 'grapheme' }),
  amount: fc.bigInt({ min: 1n, max: MAX_AMOUNT }),
  split: fc.record({ creator: fc.bigInt({ min: 0n, max: MAX_AMOUNT }), pool: fc.bigInt({ min: 0n, max: MAX_AMOUNT }), fee: fc.bigInt({ min: 0n, max: MAX_AMOUNT }) }),
  policy: fc.constant('6000/3000/1000'),
  ref: fc.option(fc.string({ minLength: 1, unit: 'binary' }), { nil: null }),
  evidence: fc.stringMatching(/^[0-9a-f]{64}$/),
});

test('canonical entry bytes equal RFC 8785 (the canonicalize package) for random entries, and parse back', () => {
  fc.assert(fc.property(entryArb, (e) => {
    const plain = {
      v: e.v, seq: e.seq, ts: e.ts, subject: e.subject, beneficiary: e.beneficiary, amount: e.amount.toString(),
      split: { creator: e.split.creator.toString(), pool: e.split.pool.toString(), fee: e.split.fee.toString() },
      policy: e.policy, ref: e.ref, evidence: e.evidence,
    };
    const ours = canonicalEntry(e);
    assert.equal(ours, canonicalize(plain));
    assert.deepEqual(parseCanonicalEntry(ours), { ...e, split: { ...e.split } });
  }), { numRuns: 500 });
});

test('receipts are spelt as JSON.stringify spells {...receipt, checkpointed}, one or a batch', () => {
  const leafArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
  fc.assert(fc.property(fc.array(fc.tuple(entryArb, leafArb), { maxLength: 8 }), fc.maxSafeNat(), (rows, covered) => {
    const receipts = rows.map(([e, leaf]) => receiptOf(e, leaf));
    const plain = receipts.map((r) => ({ ...r, checkpointed: r.seq < covered }));
    plain.forEach((p, i) => assert.equal(receiptJson(receipts[i]!, p.checkpointed), JSON.stringify(p)));
    assert.equal(receiptsJson(receipts, covered), JSON.stringify({ receipts: plain }));
    // At the boundary: a checkpoint covering exactly up to one of them.
    for (const { seq } of receipts) {
      assert.equal(receiptsJson(receipts, seq), JSON.stringify({ receipts: receipts.map((r) => ({ ...r, checkpointed: r.seq < seq })) }));
    }
  }), { numRuns: 300 });
});

test('parseCanonicalEntry rejects non-canonical text', () => {
  const e: LedgerEntry = { v: 1, seq: 0, ts: 1, subject: 's', beneficiary: 'b', amount: 5n, split: { creator: 3n, pool: 1n, fee: 1n }, policy: '6000/3000/1000', ref: null, evidence: '00' };
  const text = canonicalEntry(e);
  assert.throws(() => parseCanonicalEntry(text.replace('{"amount"', '{ "amount"')));
  assert.throws(() => parseCanonicalEntry(text.replace('"v":1', '"v":2')));
});
