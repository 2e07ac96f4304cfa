import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summariseProfile, type CpuProfile } from '../src/bench/profile.ts';

const frame = (functionName: string, url = '', lineNumber = -1) => ({ functionName, url, lineNumber });

test('profile summary: self time per function and per kind of work, largest first', () => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [10] },
      { id: 10, callFrame: frame('jSync', 'file:///opt/nexus/dist/nexus.mjs', 99), children: [11] },
      // Node's own wrapper is skipped: the caller shown is ours.
      { id: 11, callFrame: frame('fsyncSync', 'node:fs', 1320), children: [5] },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('(garbage collector)') },
      { id: 4, callFrame: frame('wasm-function[7]', 'wasm://wasm/00439c6a', 0) },
      { id: 5, callFrame: frame('fsync') },
      { id: 6, callFrame: frame('commit', 'file:///opt/nexus/dist/nexus.mjs', 41) },
      { id: 7, callFrame: frame('verifyOneShot', 'node:internal/crypto/sig', 232) },
      { id: 8, callFrame: frame('', 'file:///opt/nexus/dist/nexus.mjs', 9) },
      // The same function reached by another call path: one row.
      { id: 9, callFrame: frame('commit', 'file:///opt/nexus/dist/nexus.mjs', 41) },
    ],
    samples: [2, 3, 4, 5, 6, 7, 8, 9, 6, 1, 99],
    timeDeltas: [1000, 500, 1800, 1700, 1000, 2500, 500, 500, 500, -20, 700],
  };
  const s = summariseProfile(profile, 4);
  // The negative delta and the sample of an unknown node are not counted; (root) is native.
  assert.equal(s.totalMs, 10);
  assert.deepEqual(s.top, [
    { name: 'verifyOneShot', where: 'node:internal/crypto/sig:233', kind: 'javascript', ms: 2.5, share: 0.25 },
    { name: 'commit', where: 'nexus.mjs:42', kind: 'javascript', ms: 2, share: 0.2 },
    { name: 'wasm-function[7]', where: 'wasm://wasm/00439c6a:1', kind: 'wasm', ms: 1.8, share: 0.18 },
    { name: 'fsync', where: 'from jSync', kind: 'native', ms: 1.7, share: 0.17 },
  ]);
  assert.deepEqual(s.kinds, { javascript: 0.5, wasm: 0.18, native: 0.17, gc: 0.05, idle: 0.1 });
  assert.equal(summariseProfile({ nodes: [], samples: [], timeDeltas: [] }).totalMs, 0);
});
