/**
 * The replay store under a sustained signed load: N live nonces (rate ×
 * max_skew_s; 600k = 2,000 req/s for 300 s), memory held (JS heap + typed
 * arrays, after a full GC), time per remember(), and the longest single call
 * (a rebuild). Beside it, in the same run, the plain Map of strings it
 * replaced (what the node had before), for the ratio; each in a fresh
 * process, so neither's garbage is counted against the other.
 *
 *   node --expose-gc --import tsx bench/replay.ts [--nonces 600000]
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ReplayStore } from '../src/sentry/replay.ts';

const { values } = parseArgs({ options: { nonces: { type: 'string', default: '600000' }, store: { type: 'string' } } });
if (!values.store) {
  const mb = (['map', 'table'] as const).map((store) => {
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--nonces', values.nonces!, '--store', store], { encoding: 'utf8' });
    process.stdout.write(out);
    return Number(/([0-9.]+) MB held/.exec(out)![1]);
  });
  console.log(`memory ReplayStore ÷ Map: ${(mb[1]! / mb[0]!).toFixed(2)}`);
  process.exit(0);
}
const N = Number(values.nonces);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const dids = Array.from({ length: 1000 }, () => `did:key:z6Mk${randomBytes(33).toString('base64url').slice(0, 44)}`);
// Fresh key strings per call, as the node builds them per request: what a store holds is what it retains.
const nonces = randomBytes(N * 12);
const keyOf = (i: number) => ReplayStore.key(dids[i % dids.length]!, nonces.toString('base64url', i * 12, i * 12 + 12));
const held = () => {
  // Twice: array buffers dropped in the first collection are freed in the next.
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** The Map of key → expiry (ms) the node used before, pruned by a full walk every 10 s. */
class MapStore {
  readonly seen = new Map<string, number>();
  lastPrune = 0;
  remember(key: string, expires: number, now: number): string {
    const until = this.seen.get(key);
    if (until !== undefined && until >= now) return 'replay';
    if (now - this.lastPrune > 10_000) {
      this.lastPrune = now;
      for (const [k, u] of this.seen) if (u < now) this.seen.delete(k);
    }
    this.seen.set(key, expires);
    return 'ok';
  }
}

function run(name: string, store: { remember(key: string, expires: number, now: number): string }) {
  const before = held();
  // 2,000 nonces per simulated second, each live for 300 s.
  let worst = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const now = 1_780_000_000_000 + Math.floor(i / 2);
    const t = performance.now();
    if (store.remember(keyOf(i), now + 300_000, now) !== 'ok') throw new Error('refused a fresh nonce');
    worst = Math.max(worst, performance.now() - t);
  }
  const us = ((performance.now() - t0) * 1000) / N;
  const mb = (held() - before) / 1048576;
  console.log(`${name.padEnd(12)} ${N} live nonces: ${mb.toFixed(1)} MB held, ${us.toFixed(2)} µs per remember, longest call ${worst.toFixed(1)} ms`);
}

if (values.store === 'map') run('Map (before)', new MapStore());
else run('ReplayStore', new ReplayStore());
