/**
 * The replay store against a plain model (a Map of key → expiry second): the
 * same answers for any sequence of nonces, clocks and capacities, across the
 * table's growth, slot reuse and rebuilds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplayStore } from '../src/sentry/replay.ts';

/** What the store promises: live while ceil(expires/1 s) ≥ ceil(now/1 s); full when the live ones reach the bound. */
class Model {
  readonly seen = new Map<string, number>();
  constructor(readonly max: number) {}
  remember(key: string, expires: number, now: number): 'ok' | 'replay' | 'full' {
    const nowS = Math.ceil(now / 1000);
    const until = this.seen.get(key);
    if (until !== undefined && until >= nowS) return 'replay';
    let live = 0;
    for (const u of this.seen.values()) if (u >= nowS) live++;
    if (live >= this.max) return 'full';
    this.seen.set(key, Math.max(1, Math.ceil(expires / 1000)));
    return 'ok';
  }
}

const T0 = 1_780_000_000_000;

test('replay store: same answers as the model for any nonces, windows and clocks (fast-check)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.record({ key: fc.integer({ min: 0, max: 60 }), window: fc.integer({ min: 0, max: 20_000 }), advance: fc.integer({ min: 0, max: 3_000 }) }), { maxLength: 400, size: 'max' }),
      (max, ops) => {
        const store = new ReplayStore({ maxEntries: max });
        const model = new Model(max);
        let now = T0;
        for (const op of ops) {
          now += op.advance;
          const key = ReplayStore.key('did:key:z6MkTest', `n${op.key}`);
          assert.equal(store.remember(key, now + op.window, now), model.remember(key, now + op.window, now), `key ${op.key} at +${now - T0} ms`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('replay store: 100k live nonces are all refused again, the table stays within 2.7 slots each, and expired ones are reclaimed', () => {
  const store = new ReplayStore();
  const now = T0;
  const n = 100_000;
  for (let i = 0; i < n; i++) assert.equal(store.remember(`k${i}`, now + 300_000, now), 'ok');
  for (let i = 0; i < n; i += 97) assert.equal(store.remember(`k${i}`, now + 300_000, now + 1000), 'replay');
  assert.equal(store.size, n);
  assert.ok(store.capacity <= 2.7 * n, `capacity ${store.capacity}`);
  // Five minutes on, every one of them expired: a new wave of as many takes
  // their place (reused slots, or a rebuild that drops them); the table does
  // not grow with what expired.
  const later = now + 301_000;
  for (let i = 0; i < n; i++) assert.equal(store.remember(`later${i}`, later + 300_000, later), 'ok');
  assert.ok(store.capacity <= 2.7 * n, `capacity ${store.capacity}`);
  assert.ok(store.size <= 1.5 * n, `size ${store.size}`);
  assert.equal(store.remember('k5', later + 300_000, later), 'ok', 'an expired nonce is accepted again');
});

test('replay store: a full store refuses new nonces (fail closed) until old ones expire; nonces loaded at start are refused', () => {
  const store = new ReplayStore({ maxEntries: 3 });
  store.load([{ key: 'a', expires: T0 + 5000 }, { key: 'b', expires: T0 + 5000 }, { key: 'old', expires: T0 - 1 }], T0);
  assert.equal(store.size, 2, 'an expired record is not loaded');
  assert.equal(store.remember('a', T0 + 5000, T0), 'replay');
  assert.equal(store.remember('old', T0 + 5000, T0), 'ok');
  assert.equal(store.remember('c', T0 + 5000, T0), 'full');
  assert.equal(store.remember('c', T0 + 9000, T0 + 6000), 'ok');
});
