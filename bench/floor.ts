/**
 * What this machine allows at best (issue 8, SPEC §10): the CPU that every
 * signed request costs in this design before the node does anything of its
 * own, measured part by part, side by side, in one run — and the most
 * requests/s and events/s those parts alone leave on these cores.
 *
 *   verify   ed25519 through the node's own verifyEd25519 (node:crypto on
 *            the thread pool, the fastest verify on this machine: NOTES.md)
 *   http     the bare Hono app of `nexus bench --ceiling`, in its own process,
 *            answering the same kind of signed requests
 *   load     the undici load generator driving it (it shares the cores)
 *   vault    the group committer alone (bench/commit.ts --json: real vault,
 *            Merkle tree, fsyncs), in its most favourable shape: single
 *            events in the largest group 64 connections can form, batches of
 *            100 in groups of 16, 16 devices (nexus bench's default)
 *
 * Everything else the node does — JSON, the Sentry's header parsing, replay
 * checks, responses — counts as free here, so the bound is generous. A
 * target above it cannot be reached on this machine by tuning the node:
 * it needs other hardware or another design. Batches meet a second bound:
 * every write goes through one SQLite connection on one thread, so the time
 * that thread is busy per event (sync checkpoint fsyncs included) caps
 * events/s on any number of cores.
 *
 * Outside the sum, the event loop's own time to hand a verify to the thread
 * pool (the call, not the verify): with the pool busy (64 in flight, as
 * under closed-loop load) and idle (one at a time, the event loop working
 * ~300 µs between, as at 2,000 req/s). Handing work to an idle pool wakes
 * one of its threads; on a virtual machine the waker can pay tens of µs.
 *
 *   node --import tsx bench/floor.ts [--seconds 5] [--rounds 3]
 */
import { spawn, execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateKey, verifyEd25519 } from '../src/adapters/identity/keys.ts';
import { SPEC_TARGETS, machineCores, presign, processStats } from '../src/bench/harness.ts';
import { runLoad } from '../src/bench/load.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cores = machineCores();
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// The requests nexus bench sends (16 devices, one event or 100 each). The
// bare app checks nothing, so a pool of them is sent round and round.
const keys = await Promise.all(Array.from({ length: 16 }, () => generateKey('ed25519')));
const quiet = () => {};
const signed = async (events: number, batch: number) =>
  (await presign(keys, 'http://127.0.0.1', events, batch, 0, quiet)).map((r) => ({ path: '/v1/events', headers: r.headers, body: r.body }));
const singles = await signed(2000, 1);
const batches = await signed(200 * 100, 100);

/** A message the size of a single event's signature base (~300 bytes; the verify hardly depends on it), signed. */
function signedMessage() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const message = randomBytes(300);
  return { raw: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'), message, signature: sign(null, message, privateKey) };
}

/** Event-loop wall time of one verifyEd25519 call: the hand-off to the pool, not the verify. */
function handOff(s: ReturnType<typeof signedMessage>, times: number[]): Promise<boolean> {
  const t = performance.now();
  const verified = verifyEd25519(s.raw, s.message, s.signature);
  times.push(performance.now() - t);
  return verified;
}

/** CPU per verify, 64 in flight, and the median hand-off to that busy pool. */
async function verifyMs(): Promise<{ verify: number; handOffBusy: number }> {
  const s = signedMessage();
  const n = 8000;
  const times: number[] = [];
  const before = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next++ < n) if (!(await handOff(s, times))) throw new Error('verify failed');
  }));
  return { verify: cpuMs(process.cpuUsage(before)) / n, handOffBusy: median(times) };
}

/** The median hand-off to an idle pool: one verify at a time after ~300 µs of the event loop's own work. */
async function handOffIdleMs(): Promise<number> {
  const s = signedMessage();
  const times: number[] = [];
  for (let i = 0; i < 1500; i++) {
    for (const end = performance.now() + 0.3; performance.now() < end; );
    if (!(await handOff(s, times))) throw new Error('verify failed');
    await new Promise((r) => setTimeout(r, 0)); // its thread goes back to sleep
  }
  return median(times);
}

/** CPU per request of the bare app and of the load generator, both from one run. */
async function httpMs(requests: typeof singles, concurrency: number): Promise<{ http: number; load: number }> {
  const server = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench/hello-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.once('exit', (code) => reject(new Error(`ceiling exited ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    const request = (i: number) => requests[i % requests.length];
    await runLoad({ url, concurrency, seconds: 1, eventsPerRequest: 1, request }); // warm-up
    const server0 = processStats(server.pid!).cpuSeconds;
    const load0 = process.cpuUsage();
    const r = await runLoad({ url, concurrency, seconds: SECONDS, eventsPerRequest: 1, request });
    const load = cpuMs(process.cpuUsage(load0)) / r.requests;
    const server1 = processStats(server.pid!).cpuSeconds;
    if (server0 === null || server1 === null) throw new Error('no /proc: this bench reads the server CPU from Linux /proc');
    if (r.errors > 0) throw new Error(`${r.errors} requests failed against the bare app`);
    return { http: ((server1 - server0) * 1000) / r.requests, load };
  } finally {
    server.kill('SIGTERM');
  }
}

interface VaultRun { cpuMsPerEvent: number; eventLoopBusyMsPerEvent: number; eventsPerSecond: number }
function vault(args: string[]): VaultRun {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench/commit.ts'), '--json', '--subjects', '16', ...args], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as VaultRun;
}

const runs: Array<Record<string, number>> = [];
for (let round = 1; round <= ROUNDS; round++) {
  process.stderr.write(`round ${round}/${ROUNDS}: verify, hand-off, HTTP single, HTTP batch, vault single, vault batch\n`);
  const { verify, handOffBusy } = await verifyMs();
  const handOffIdle = await handOffIdleMs();
  const h1 = await httpMs(singles, 64);
  const h100 = await httpMs(batches, 16);
  const v1 = vault(['--group', '64', '--groups', '600', '--batch', '1']);
  const v100 = vault(['--group', '16', '--groups', '200', '--batch', '100']);
  runs.push({
    verify, handOffBusy, handOffIdle, http1: h1.http, load1: h1.load, vault1: v1.cpuMsPerEvent,
    http100: h100.http, load100: h100.load, vault100: v100.cpuMsPerEvent, writer100: v100.eventLoopBusyMsPerEvent,
  });
}
const m = Object.fromEntries(Object.keys(runs[0]!).map((k) => [k, median(runs.map((r) => r[k]!))])) as Record<string, number>;

const single = m.verify! + m.http1! + m.load1! + m.vault1!;
const batchPerEvent = (m.verify! + m.http100! + m.load100!) / 100 + m.vault100!;
const singleBound = (cores * 1000) / single;
const batchCoresBound = (cores * 1000) / batchPerEvent;
const writerBound = 1000 / m.writer100!;
const f = (ms: number) => (ms * 1000).toFixed(1);
const n = (x: number) => Math.round(x).toLocaleString('en-US');

console.log(`\nCPU per event, µs — medians of ${ROUNDS} rounds, ${cores} cores, node ${process.version}\n`);
console.log('| part | single event | batch of 100, per event |');
console.log('| --- | ---: | ---: |');
console.log(`| ed25519 verify (node:crypto, thread pool) | ${f(m.verify!)} | ${f(m.verify! / 100)} |`);
console.log(`| HTTP: the bare Hono app | ${f(m.http1!)} | ${f(m.http100! / 100)} |`);
console.log(`| load generator (undici) | ${f(m.load1!)} | ${f(m.load100! / 100)} |`);
console.log(`| vault alone (group commit, Merkle tree, fsyncs) | ${f(m.vault1!)} | ${f(m.vault100!)} |`);
console.log(`| **floor: sum** | **${f(single)}** | **${f(batchPerEvent)}** |`);
console.log(`| most the floor allows on ${cores} cores | ${n(singleBound)} req/s | ${n(batchCoresBound)} events/s |`);
console.log(`| vault writer thread busy per event → most on one thread | — | ${f(m.writer100!)} → ${n(writerBound)} events/s |`);
console.log(`| not in the sum: the event loop's hand-off of a verify to the pool, busy / idle | ${f(m.handOffBusy!)} / ${f(m.handOffIdle!)} | — |`);
const { singleRequestsPerSecond: singleTarget, batchEventsPerSecond: batchTarget } = SPEC_TARGETS;
console.log(`| SPEC §10 target | ${n(singleTarget)} req/s (${(singleBound / singleTarget).toFixed(2)}×) | ${n(batchTarget)} events/s (${(Math.min(batchCoresBound, writerBound) / batchTarget).toFixed(2)}×) |`);
console.log(`\nper round: ${JSON.stringify(runs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v * 1e4) / 10]))))}`);
