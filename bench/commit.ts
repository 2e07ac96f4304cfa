/**
 * Group-commit benchmark (issue 8): the vault alone, no HTTP. Groups of G
 * submissions (each its own subject out of 100, its own evidence and nonce,
 * B events each) go through the real GroupCommitter, Merkle tree included,
 * and the VFS counts what reaches the disk per group in the second half of
 * the run (after the B-trees have grown): WAL/database writes, KiB, reads
 * and the fsyncs SQLite asks for (the vault fsyncs commits and checkpoints
 * on the thread pool; those are not counted here), and how long the event
 * loop was held at a stretch.
 *
 *   node --import tsx bench/commit.ts [--group 20] [--groups 2000] [--batch 1] [--subjects 100]
 *     [--no-ref] [--no-nonce] [--pragma "cache_size=-2000"]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { NodeFsVFS } from '../src/vault/node-vfs.ts';
import { openVaultAlone } from './support/vault-alone.ts';

const { values } = parseArgs({
  options: {
    group: { type: 'string', default: '20' },
    groups: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '1' },
    subjects: { type: 'string', default: '100' },
    'no-ref': { type: 'boolean', default: false },
    'no-nonce': { type: 'boolean', default: false },
    pragma: { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});
const G = Number(values.group);
const GROUPS = Number(values.groups);
const B = Number(values.batch);

const io = { syncs: 0, writes: 0, bytes: 0, reads: 0 };
type Fn = (...args: never[]) => number;
function count<K extends 'jSync' | 'jWrite' | 'jRead'>(name: K, add: (args: Parameters<NodeFsVFS[K]>) => void): void {
  const original = NodeFsVFS.prototype[name] as unknown as Fn;
  (NodeFsVFS.prototype as unknown as Record<K, Fn>)[name] = function (this: NodeFsVFS, ...args: never[]) {
    add(args as unknown as Parameters<NodeFsVFS[K]>);
    return original.apply(this, args);
  };
}
count('jSync', () => io.syncs++);
count('jRead', () => io.reads++);
count('jWrite', ([, data]) => {
  io.writes++;
  io.bytes += data.byteLength;
});

const dir = mkdtempSync(join(tmpdir(), 'nexus-commit-bench-'));
const { vault, committer, close } = await openVaultAlone(dir);
for (const p of values.pragma) vault.database.exec(`PRAGMA ${p}`);
const subjects = Array.from({ length: Number(values.subjects) }, (_, i) => `did:key:z6Mk${randomBytes(30).toString('base64url')}${i}`);

// Every submission is made before the clock starts: the run measures the vault, not their making.
let ref = 0;
let request = 0;
const plan = Array.from({ length: GROUPS }, () =>
  Array.from({ length: G }, () => {
    const subject = subjects[request++ % subjects.length]!;
    return {
      subject,
      events: Array.from({ length: B }, () => ({ beneficiary: subject, amount: 1234n, ref: values['no-ref'] ? null : `b${ref++}` })),
      evidence: randomBytes(330),
      ...(values['no-nonce'] ? {} : { nonce: { key: `${subject} ${randomBytes(16).toString('base64url')}`, expires: Date.now() + 600_000 } }),
    };
  }),
);
/** Groups measured per group / per event: the second half, once the B-trees have grown. */
const half = Math.ceil(GROUPS / 2);
const t0 = performance.now();
let tHalf = t0;
let cpuHalf = process.cpuUsage();
let eluHalf = performance.eventLoopUtilization();
// How long the event loop was held at a stretch (a blocking fsync holds it; a thread-pool one does not).
const stalls = monitorEventLoopDelay({ resolution: 1 });
const groupMs: number[] = [];
for (let g = 0; g < GROUPS; g++) {
  if (g === GROUPS - half) {
    Object.assign(io, { syncs: 0, writes: 0, bytes: 0, reads: 0 });
    tHalf = performance.now();
    cpuHalf = process.cpuUsage();
    eluHalf = performance.eventLoopUtilization();
    stalls.enable();
  }
  const tg = performance.now();
  await Promise.all(plan[g]!.map((submission) => committer.submit(submission)));
  groupMs.push(performance.now() - tg);
}
const cpu = process.cpuUsage(cpuHalf);
const elu = performance.eventLoopUtilization(eluHalf);
stalls.disable();
const stallMs = { p99: stalls.percentile(99) / 1e6, max: stalls.max / 1e6 };
groupMs.sort((a, b) => a - b);
const seconds = (performance.now() - t0) / 1000;
if (values.json) {
  const events = half * G * B;
  console.log(JSON.stringify({
    group: G, batch: B, subjects: subjects.length, events: GROUPS * G * B,
    eventsPerSecond: Math.round((GROUPS * G * B) / seconds),
    cpuMsPerEvent: (cpu.user + cpu.system) / 1000 / events,
    eventLoopBusyMsPerEvent: elu.active / events,
    eventLoopDelayMs: stallMs,
  }));
} else {
  const perGroup = (n: number) => (n / half).toFixed(1);
  console.log(`groups of ${G} submissions × ${B} events from ${subjects.length} subjects, ${GROUPS} groups${values['no-ref'] ? ', no refs' : ''}${values['no-nonce'] ? ', no nonces' : ''}${values.pragma.length ? `, PRAGMA ${values.pragma.join('; ')}` : ''}`);
  console.log(`  ${((performance.now() - tHalf) / half).toFixed(2)} ms per group (2nd half), ${Math.round((GROUPS * G * B) / seconds)} events/s overall`);
  console.log(`  group commit time p50 / p99 / max: ${groupMs[Math.floor(groupMs.length / 2)]!.toFixed(2)} / ${groupMs[Math.floor(groupMs.length * 0.99)]!.toFixed(2)} / ${groupMs.at(-1)!.toFixed(2)} ms`);
  console.log(`  event loop busy ${((elu.active / (half * G * B)) * 1000).toFixed(1)} µs per event; held at a stretch p99 / max: ${stallMs.p99.toFixed(1)} / ${stallMs.max.toFixed(1)} ms (2nd half)`);
  console.log(`  per group (2nd half): ${perGroup(io.writes)} writes, ${(io.bytes / half / 1024).toFixed(1)} KiB, ${perGroup(io.reads)} reads, ${(io.syncs / half).toFixed(2)} checkpoint fsyncs`);
  console.log(`  vault ${(statSync(join(dir, 'vault.db')).size / 1e6).toFixed(1)} MB for ${vault.size} entries`);
}
await close();
rmSync(dir, { recursive: true });
