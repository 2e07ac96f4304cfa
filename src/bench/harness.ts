/**
 * `nexus bench`: the harness operators run on their own hardware. It starts a
 * node on a fresh data directory (or targets --url), enrols generated devices,
 * pre-signs every request (RFC 9421, unique refs), drives them with undici at a
 * concurrency or a rate, then stops the node and checks the vault: every
 * acknowledged event present and unchanged, nothing doubled, the full audit
 * clean. `--crash-trials N` SIGKILLs the node under load N times instead.
 */
import { Pool } from 'undici';
import { generateKey, type KeyFile, type KeyType } from '../adapters/identity/keys.ts';
import { signRequest } from '../cli/client.ts';
import { dataDir, initDataDir, loadConfig, loadNodeKey, type DataDir } from '../config/datadir.ts';
import { Vault, type FsyncKind } from '../vault/vault.ts';
import { TransparencyLog } from '../log/log.ts';
import { auditVault } from '../log/audit.ts';
import { nodeSigner } from '../server/node.ts';
import { fs, os, path, tmpDir } from '../runtime/fs.ts';
import { spawn, type ChildProcess } from '../runtime/process.ts';
import { percentile } from './load.ts';
import { summariseProfile, type CpuProfile, type ProfileSummary } from './profile.ts';
import { histogramBuckets, metricValue } from '../telemetry/metrics.ts';
import { nodeCrypto } from '../runtime/crypto.ts';

export interface BenchOptions {
  /** Command that runs this program (node + script, or the single executable). */
  self: { file: string; args: string[] };
  data?: string;
  url?: string;
  events: number;
  batch: number;
  concurrency: number;
  /** Requests per second offered (open loop); 0 = closed loop at `concurrency`. */
  rate: number;
  devices: number;
  keyType: KeyType;
  crashTrials: number;
  /**
   * Requests sent first, the same way (rate or concurrency), and not measured:
   * a fresh node runs its hot paths unoptimised until the JIT has seen them
   * (its first 2–4 s at 2,000 req/s here), and at a fixed rate the backlog
   * of that cold start dominates the tail. Their events are booked and checked like the others.
   */
  warmup?: number;
  /** After the node, drive the same requests at a bare Hono app (the ceiling) and report the ratio. */
  ceiling?: boolean;
  /** Profile the node under test (its whole life, NEXUS_CPU_PROFILE) into this directory and summarise it. */
  cpuProf?: string;
  progress: (line: string, final?: boolean) => void;
}

export interface BenchReport {
  mode: string;
  keyType: KeyType;
  batch: number;
  concurrency: number;
  rateOffered: number | null;
  /** Events sent and acknowledged include the warm-up's; throughput, latency and CPU are of the measured run only. */
  warmupRequests?: number;
  eventsSent: number;
  eventsAcknowledged: number;
  eventsBooked: number | null;
  lost: number | null;
  doubled: number | null;
  corruption: string[] | null;
  seconds: number;
  eventsPerSecond: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /**
   * Where the measured run's slow answers (over 50 ms, SPEC §10's p99 bound)
   * came from, by the second they were sent in. Spread over most seconds,
   * they are requests queueing on a busy node; packed into a few, they are
   * stalls (a long fsync, a burst of arrivals) and the queue each left.
   */
  latencyTail?: LatencyTail;
  errors: Record<string, number>;
  /** CPU of the node during the load (user + system, thread pool included) and its peak RSS. */
  node: { cpuSeconds: number | null; userSeconds?: number | null; systemSeconds?: number | null; peakRssMb: number | null };
  /** CPU of this process (the load generator) during the load: it shares the machine with the node. */
  loadGeneratorCpuSeconds?: number;
  /** Per trial: events sent in it; acknowledged and booked so far (cumulative). */
  crashTrials?: Array<{ trial: number; sent: number; acknowledged: number; booked: number; lost: number; doubled: number }>;
  /**
   * The measured run's CPU per request, and the most requests/s it allows on
   * this machine's cores if node and load generator shared them perfectly
   * (Linux: absent when the node's CPU is unknown).
   */
  cpu?: {
    cores: number; nodeMsPerRequest: number; loadGeneratorMsPerRequest: number; boundRequestsPerSecond: number; coresBusy: number;
    /**
     * The machine's cores (as a share of all) busy with other work meanwhile:
     * other processes, and the kernel's own threads (its journal commits for
     * the node's fsyncs among them); `steal` is time a hypervisor gave to
     * other guests. Linux /proc/stat; absent elsewhere. On a shared machine
     * this says whether a slow run was the node's doing.
     */
    others?: number;
    steal?: number;
  };
  /**
   * How fast one core of this machine was just before the warm-up and just
   * after the run: µs per ed25519 verify on the bench's thread (coreSpeed).
   * Compare runs by it: here the same build's CPU per request moved by a
   * quarter between hours of one day, with no steal to show for it.
   */
  coreSpeed?: { verifyUsBefore: number; verifyUsAfter: number };
  /**
   * The node's group commits during the measured run, from its metrics: how
   * many events shared one transaction and one fsync, and how long each took
   * (fsync included). Few events per commit at a long commit time point at
   * the disk. Absent when the metrics could not be read.
   */
  commits?: { count: number; events: number; eventsPerCommit: number; msPerCommit: number };
  /**
   * How late the node's event loop ran during the measured run (its metrics:
   * timers every 10 ms, measured since the scrape before the run). A long
   * max is a stretch the node answered nothing: a blocking fsync, a GC, a
   * long synchronous task.
   */
  eventLoopDelayMs?: { p99: number; max: number };
  /**
   * The share of the measured run the node's main thread was busy (its
   * event loop utilisation, from its metrics). The whole request path runs
   * there: near 1, the node is at its limit whatever the cores say.
   */
  mainThreadBusy?: number;
  /**
   * Where the node's main thread was during the measured run (Linux
   * schedstat): on a core, or runnable and waiting for one — shares of the
   * run — and its CPU per request. Busy but often waiting, the machine's
   * cores are the bound (the node's thread pool, its GC helpers and the load
   * generator hold them meanwhile); on a core nearly all the run, the node's
   * own serial work is, and `boundRequestsPerSecond` is what it allows.
   */
  mainThread?: { onCore: number; waitingForCore: number; msPerRequest: number; boundRequestsPerSecond: number };
  /**
   * The vault's fsyncs during the measured run, by what they made durable
   * (its metrics' histogram: bounds, not exact values). Every answer waits
   * for a commit's fsync, and a commit for the checkpoint before it: one
   * slow fsync holds every request that arrives meanwhile.
   */
  fsyncs?: Record<FsyncKind, DurationSummary>;
  /**
   * The node's GC pauses on its main thread during the measured run (its
   * metrics' histogram, every kind together: bounds). Beside the fsyncs they
   * say what stalled a slow second: a pause holds every request, a commit's
   * fsync every answer of its group and of the group behind it.
   */
  gcPauses?: DurationSummary;
  /** `--cpu-prof`: the node's profile and where its time went. */
  profile?: ProfileSummary & { file: string };
  /** Set when the bench made its own data directory and kept it: something was lost, doubled or corrupt. */
  keptData?: string;
  /** The bare-Hono ceiling driven with the same requests in the same run; ratio = node ÷ ceiling requests/s. */
  ceiling?: { requestsPerSecond: number; latencyMs: { p50: number; p90: number; p99: number; max: number }; ratio: number; cpuSeconds: number | null; loadGeneratorCpuSeconds: number };
}

/** SPEC §10's targets on a 2-core machine, load generator included: what every bench's ratios are taken against. */
export const SPEC_TARGETS = {
  /** Signed single-event requests per second, durable. */
  singleRequestsPerSecond: 5_000,
  /** Events per second in signed batches of 100. */
  batchEventsPerSecond: 50_000,
  /** p99 at 2,000 requests/s offered: answers and fsyncs slower than this count as slow in the reports. */
  p99Ms: 50,
} as const;
const SLOW_MS = SPEC_TARGETS.p99Ms;

export interface LatencyTail {
  slowMs: number;
  /** Answers slower than slowMs. */
  slow: number;
  /** Seconds the run sent in (a second of a stall that answered nothing counts too), and those with a slow answer. */
  seconds: number;
  secondsWithSlow: number;
  /** The seconds with the most slow answers: when (seconds into the run), how many answers, how many slow, the slowest. */
  worstSeconds: Array<{ atS: number; requests: number; slow: number; maxMs: number }>;
}

export interface Prepared {
  body: Uint8Array;
  headers: Record<string, string>;
  refs: string[];
}

interface Ack {
  seq: number;
  amount: string;
  leaf: string;
}

async function makeDevices(d: DataDir, n: number, type: KeyType): Promise<KeyFile[]> {
  const keys = await Promise.all(Array.from({ length: n }, () => generateKey(type)));
  const vault = await Vault.open(d.vaultFile);
  try {
    for (const k of keys) vault.addDevice(k.did, 'bench');
  } finally {
    vault.close();
  }
  return keys;
}

/** Signs `events` events as requests of `batch` (refs `b<offset + i>-<k>`), the way every bench run sends them. */
export async function presign(keys: KeyFile[], url: string, events: number, batch: number, offset: number, progress: BenchOptions['progress']): Promise<Prepared[]> {
  const out: Prepared[] = [];
  const requests = Math.ceil(events / batch);
  const t0 = Date.now();
  for (let i = 0; i < requests; i++) {
    const n = Math.min(batch, events - i * batch);
    const refs = Array.from({ length: n }, (_, k) => `b${offset + i}-${k}`);
    const items = refs.map((ref, k) => ({ amount: String(100 + ((i * batch + k) % 9900)), ref }));
    const json = batch === 1 ? items[0] : { events: items };
    const body = new TextEncoder().encode(JSON.stringify(json));
    const headers = await signRequest(keys[i % keys.length]!, 'POST', `${url}/v1/events`, body);
    out.push({ body, headers: { ...headers, 'content-type': 'application/json' }, refs });
    if (i % 5000 === 4999) progress(`pre-signed ${i + 1}/${requests} requests (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  return out;
}

/**
 * The connections to one target. A warm-up opens them and the measured run
 * that follows reuses them, as a fleet's keep-alive connections would be
 * there: with a new pool the run's first second opened up to --concurrency
 * connections at once (0.3–1.6 s latency outliers at 2,000 req/s here).
 */
function connect(url: string, o: BenchOptions): Pool {
  return new Pool(url, { connections: o.concurrency, pipelining: 1 });
}

/** Sends `reqs` (at o.rate, or o.concurrency at a time) through `pool`, or connections of its own; records every acknowledged event by ref. */
async function drive(url: string, reqs: Prepared[], o: BenchOptions, acks: Map<string, Ack>, options: { stopAfterMs?: number; pool?: Pool } = {}) {
  const { stopAfterMs } = options;
  const pool = options.pool ?? connect(url, o);
  const latencies: number[] = [];
  /** When each request in `latencies` was sent, ms into the run. */
  const sentAtMs: number[] = [];
  const errors: Record<string, number> = {};
  let next = 0;
  let sent = 0;
  let acked = 0;
  const start = performance.now();
  let lastReport = start;
  const deadline = stopAfterMs ? start + stopAfterMs : Infinity;
  const one = async (r: Prepared) => {
    const t = performance.now();
    sent += r.refs.length;
    try {
      const res = await pool.request({ method: 'POST', path: '/v1/events', headers: r.headers, body: r.body });
      const text = await res.body.text();
      if (res.statusCode === 201 || res.statusCode === 200) {
        latencies.push(performance.now() - t);
        sentAtMs.push(t - start);
        const j = JSON.parse(text) as Ack & { ref: string; receipts?: Array<Ack & { ref: string }> };
        for (const rc of j.receipts ?? [j]) acks.set(rc.ref, { seq: rc.seq, amount: rc.amount, leaf: rc.leaf });
        acked += j.receipts?.length ?? 1;
      } else {
        const code = (() => { try { return (JSON.parse(text) as { code?: string }).code; } catch { return undefined; } })() ?? `HTTP_${res.statusCode}`;
        errors[code] = (errors[code] ?? 0) + 1;
      }
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'NETWORK';
      errors[code] = (errors[code] ?? 0) + 1;
    }
    const now = performance.now();
    if (now - lastReport > 1000) {
      lastReport = now;
      const sorted = latencies.slice(-20000).sort((a, b) => a - b);
      o.progress(`${acked} events acknowledged, ${Math.round(acked / ((now - start) / 1000))} events/s, p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`);
    }
  };
  if (o.rate > 0) {
    // Open loop: requests leave on schedule whether or not earlier ones returned.
    const inflight = new Set<Promise<void>>();
    while (next < reqs.length && performance.now() < deadline) {
      const due = start + (next / o.rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const p = one(reqs[next++]!).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(Array.from({ length: o.concurrency }, async () => {
      while (next < reqs.length && performance.now() < deadline) await one(reqs[next++]!);
    }));
  }
  const seconds = (performance.now() - start) / 1000;
  if (!options.pool) await pool.close().catch(() => {});
  return { seconds, latencies, sentAtMs, errors, sent, acked, requests: latencies.length };
}

/** Sends `o.warmup` requests (refs from `offset` on) the way the run will; returns them for the ceiling. */
async function warmUp(url: string, keys: KeyFile[], offset: number, o: BenchOptions, acks: Map<string, Ack>, pool: Pool): Promise<{ requests: Prepared[]; sent: number }> {
  if (!o.warmup) return { requests: [], sent: 0 };
  const requests = await presign(keys, url, o.warmup * o.batch, o.batch, offset, o.progress);
  o.progress(`warming up: ${requests.length} requests, not measured…`, true);
  return { requests, sent: (await drive(url, requests, o, acks, { pool })).sent };
}

function startNode(o: BenchOptions, dir: string, profile?: string): Promise<{ proc: ChildProcess; port: number; adminPort: number }> {
  return startProcess(o, ['start', '--data', dir, '--port', '0', '--admin-port', '0'], profile ? { NEXUS_CPU_PROFILE: profile } : {});
}

function startProcess(o: BenchOptions, args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; port: number; adminPort: number }> {
  const proc = spawn(o.self.file, [...o.self.args, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /\{"event":"listening","port":(\d+),"adminPort":(\d+)\}/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]), adminPort: Number(m[2]) });
    });
    proc.stderr!.on('data', (d) => { out += d; });
    proc.on('exit', (code) => reject(new Error(`node exited ${code}: ${out.slice(-2000)}`)));
  });
}

export interface ProcessStats {
  cpuSeconds: number | null;
  userSeconds: number | null;
  systemSeconds: number | null;
  peakRssMb: number | null;
}

/** CPU seconds (user, system) and peak RSS of a process (Linux /proc); nulls elsewhere. */
export function processStats(pid: number): ProcessStats {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const user = Number(stat[11]) / 100;
    const system = Number(stat[12]) / 100;
    const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuSeconds: user + system, userSeconds: user, systemSeconds: system, peakRssMb: hwm ? Number(hwm[1]) / 1024 : null };
  } catch {
    return { cpuSeconds: null, userSeconds: null, systemSeconds: null, peakRssMb: null };
  }
}

/** Linux /proc/stat: seconds of one core the whole machine spent busy (user, nice, system, irq, softirq) and stolen so far; undefined elsewhere. */
export function machineTimes(): { busy: number; steal: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    if (![user, nice, system, irq, softirq, steal].every((v) => Number.isFinite(v))) return undefined;
    return { busy: (user! + nice! + system! + irq! + softirq!) / 100, steal: steal! / 100 };
  } catch {
    return undefined;
  }
}

/**
 * Linux: seconds a process's main thread has spent on a core and runnable
 * but waiting for one, from /proc/<pid>/task/<pid>/schedstat (ns);
 * undefined elsewhere.
 */
export function threadSchedTimes(pid: number): { onCore: number; waiting: number } | undefined {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (!Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
    return { onCore: run! / 1e9, waiting: wait! / 1e9 };
  } catch {
    return undefined;
  }
}

type SchedSample = { at: number; times: ReturnType<typeof threadSchedTimes> };

/** The main thread's shares of the wall time between two samples, and its CPU per request of the run. */
export function mainThreadTimes(before: SchedSample, after: SchedSample, requests: number): BenchReport['mainThread'] {
  const [a, b] = [before.times, after.times];
  const seconds = (after.at - before.at) / 1000;
  if (!a || !b || seconds <= 0 || requests === 0) return undefined;
  const msPerRequest = ((b.onCore - a.onCore) * 1000) / requests;
  return { onCore: shareOf(b.onCore - a.onCore, seconds), waitingForCore: shareOf(b.waiting - a.waiting, seconds), msPerRequest, boundRequestsPerSecond: 1000 / msPerRequest };
}

/** `part` of `whole` (both seconds) as a share from 0 to 1: samples taken a moment apart can stray past either end. */
const shareOf = (part: number, whole: number) => Math.min(1, Math.max(0, part / whole));

/** Seconds to 0.01, as the reports give them. */
const round2 = (x: number) => Math.round(x * 100) / 100;

/** process.cpuUsage() (µs) as seconds, to 0.01. */
const cpuSecondsOf = (u: { user: number; system: number }) => round2((u.user + u.system) / 1e6);

/** What the node spent between two samples (its peak RSS is the later sample's). */
function statsDelta(before: ProcessStats, after: ProcessStats): ProcessStats {
  const d = (a: number | null, b: number | null) => (a === null || b === null ? null : round2(b - a));
  return { cpuSeconds: d(before.cpuSeconds, after.cpuSeconds), userSeconds: d(before.userSeconds, after.userSeconds), systemSeconds: d(before.systemSeconds, after.systemSeconds), peakRssMb: after.peakRssMb };
}

/** Checks the vault against the acknowledgements; returns booked / lost / doubled and the audit problems. */
async function checkVault(d: DataDir, acks: Map<string, Ack>) {
  const vault = await Vault.open(d.vaultFile);
  try {
    const origin = loadConfig(d).node.origin;
    const log = new TransparencyLog(vault, origin, nodeSigner(origin, loadNodeKey(d)));
    log.open();
    const seen = new Map<string, number>();
    let booked = 0;
    let changed = 0;
    for (const row of vault.scan()) {
      booked++;
      if (row.ref) seen.set(row.ref, (seen.get(row.ref) ?? 0) + 1);
    }
    let lost = 0;
    for (const [ref, a] of acks) {
      const stored = vault.entry(a.seq);
      if (!stored || stored.entry.ref !== ref) lost++;
      else if (stored.entry.amount.toString() !== a.amount || Buffer.from(stored.leaf).toString('hex') !== a.leaf) changed++;
    }
    const doubled = [...seen.values()].filter((n) => n > 1).length;
    const audit = auditVault(vault, { keyName: origin, publicKey: log.signer.publicKey });
    const corruption = [...audit.problems, ...(changed ? [`${changed} acknowledged events changed`] : [])];
    return { booked, lost, doubled, corruption };
  } finally {
    vault.close();
  }
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  if (o.url) return runAgainstUrl(o);
  if (o.data !== undefined) return benchIn(o, o.data);
  // A directory of our own (a 1M-event run leaves ~700 MB): removed once the
  // run came out clean, kept for inspection when it did not, or failed.
  const dir = fs.mkdtempSync(path.join(tmpDir(), 'nexus-bench-'));
  let report: BenchReport;
  try {
    report = await benchIn(o, dir);
  } catch (e) {
    if (e instanceof Error) e.message += ` (data kept in ${dir})`;
    throw e;
  }
  if (report.lost || report.doubled || report.corruption?.length) {
    o.progress(`data kept for inspection in ${dir}`, true);
    return { ...report, keptData: dir };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return report;
}

async function benchIn(o: BenchOptions, dir: string): Promise<BenchReport> {
  const d = dataDir(dir);
  if (fs.existsSync(d.vaultFile)) throw new Error(`${dir} already holds a vault; bench needs a fresh data directory`);
  initDataDir(d);
  // The defaults (200 req/s per IP) would cap a load test from one machine.
  const cfg = fs.readFileSync(d.configFile, 'utf8').replace('rate_per_identity = 1000', 'rate_per_identity = 100000000').replace('rate_per_ip = 200', 'rate_per_ip = 100000000');
  fs.writeFileSync(d.configFile, cfg);
  const keys = await makeDevices(d, o.devices, o.keyType);
  const acks = new Map<string, Ack>();
  const base = { mode: o.crashTrials ? `crash-trials ${o.crashTrials}` : o.rate ? `open loop ${o.rate} req/s` : `closed loop c=${o.concurrency}`, keyType: o.keyType, batch: o.batch, concurrency: o.concurrency, rateOffered: o.rate || null };

  if (o.crashTrials > 0) {
    const trials: NonNullable<BenchReport['crashTrials']> = [];
    let offset = 0;
    // Every trial's sending adds up: the report covers the whole campaign, as its acknowledged and booked counts do.
    const all = { seconds: 0, latencies: [] as number[], errors: {} as Record<string, number>, sent: 0, cpu: null as { user: number; system: number } | null, peakRssMb: null as number | null };
    for (let trial = 0; trial < o.crashTrials; trial++) {
      const node = await startNode(o, dir);
      const url = `http://127.0.0.1:${node.port}`;
      const reqs = await presign(keys, url, Math.max(o.events, o.batch), o.batch, offset, o.progress);
      offset += reqs.length;
      const killAfter = 300 + Math.floor(Math.random() * 2000);
      // The node's CPU (its whole life) and peak RSS, read from /proc the moment before the kill.
      let killed: ProcessStats | undefined;
      const kill = () => {
        killed ??= processStats(node.proc.pid!);
        node.proc.kill('SIGKILL');
      };
      const killer = setTimeout(kill, killAfter);
      const run = await drive(url, reqs, o, acks, { stopAfterMs: killAfter + 50 });
      clearTimeout(killer);
      all.seconds += run.seconds;
      all.sent += run.sent;
      for (const l of run.latencies) all.latencies.push(l);
      for (const [code, n] of Object.entries(run.errors)) all.errors[code] = (all.errors[code] ?? 0) + n;
      kill();
      if (killed!.userSeconds != null && killed!.systemSeconds != null) {
        const sum = all.cpu ?? { user: 0, system: 0 };
        all.cpu = { user: sum.user + killed!.userSeconds, system: sum.system + killed!.systemSeconds };
      }
      if (killed!.peakRssMb !== null) all.peakRssMb = Math.max(all.peakRssMb ?? 0, killed!.peakRssMb);
      await new Promise((r) => (node.proc.exitCode !== null || node.proc.signalCode ? r(null) : node.proc.once('exit', r)));
      const check = await checkVault(d, acks);
      trials.push({ trial, sent: run.sent, acknowledged: acks.size, booked: check.booked, lost: check.lost, doubled: check.doubled });
      o.progress(`trial ${trial + 1}/${o.crashTrials}: killed after ${killAfter} ms; ${acks.size} acknowledged so far, ${check.booked} booked, lost ${check.lost}, doubled ${check.doubled}${check.corruption.length ? `, CORRUPTION: ${check.corruption[0]}` : ''}`, true);
      if (check.lost || check.doubled || check.corruption.length) break;
    }
    const final = await checkVault(d, acks);
    return {
      ...base, eventsSent: all.sent, eventsAcknowledged: acks.size, eventsBooked: final.booked, lost: final.lost, doubled: final.doubled, corruption: final.corruption,
      seconds: all.seconds, eventsPerSecond: Number.NaN, requestsPerSecond: Number.NaN, latencyMs: latency(all.latencies), errors: all.errors,
      // Summed over the trials' nodes (start-up included), and the largest peak.
      node: all.cpu ? { cpuSeconds: round2(all.cpu.user + all.cpu.system), userSeconds: round2(all.cpu.user), systemSeconds: round2(all.cpu.system), peakRssMb: all.peakRssMb } : { cpuSeconds: null, peakRssMb: all.peakRssMb },
      crashTrials: trials,
    };
  }

  const profileFile = o.cpuProf ? path.join(o.cpuProf, `nexus-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`) : undefined;
  const node = await startNode(o, dir, profileFile);
  const url = `http://127.0.0.1:${node.port}`;
  const reqs = await presign(keys, url, o.events, o.batch, 0, o.progress);
  const pool = connect(url, o);
  const admin = { port: node.adminPort, token: fs.readFileSync(d.tokenFile, 'utf8').trim() };
  const speedBefore = coreSpeed();
  // The first scrape of a node's life (and this process's first fetch) is a
  // one-off cost: the node's first /metrics took 10 ms against 2 ms after,
  // this process's first fetch 34 ms against 8. Made right before the run,
  // its wake was the run's worst second at 2,000 req/s in 7 of 7 runs (up to
  // ~1,200 answers over 50 ms); made before the warm-up, it stays out of the
  // measured run (3 alternating pairs on a quiet disk: p99 26.9 / 32.2 /
  // 30.3 ms without, 12.2 / 7.2 / 17.0 ms with).
  await scrapeNode(admin);
  const warm = await warmUp(url, keys, reqs.length, o, acks, pool);
  // This scrape also restarts the node's event-loop delay histogram: the one after covers the run.
  const metricsBefore = await scrapeNode(admin);
  const statsBefore = processStats(node.proc.pid!);
  const cpuBefore = process.cpuUsage();
  const machineBefore = machineTimes();
  const schedBefore = { at: performance.now(), times: threadSchedTimes(node.proc.pid!) };
  const run = await drive(url, reqs, o, acks, { pool });
  const schedAfter = { at: performance.now(), times: threadSchedTimes(node.proc.pid!) };
  const cpu = process.cpuUsage(cpuBefore);
  const machineAfter = machineTimes();
  await pool.close().catch(() => {});
  const stats = statsDelta(statsBefore, processStats(node.proc.pid!));
  const metricsAfter = await scrapeNode(admin);
  const speed = { verifyUsBefore: speedBefore, verifyUsAfter: coreSpeed() };
  const commits = commitsDelta(metricsBefore, metricsAfter);
  const fsyncs = fsyncsDelta(metricsBefore, metricsAfter);
  const gcPauses = gcPausesDelta(metricsBefore, metricsAfter);
  const busy = mainThreadBusy(metricsBefore, metricsAfter);
  const mainThread = mainThreadTimes(schedBefore, schedAfter, run.requests);
  node.proc.kill('SIGTERM');
  await new Promise((r) => node.proc.once('exit', r));
  const profile = profileFile ? readProfile(profileFile) : undefined;
  o.progress('node stopped; checking the vault (full audit)…', true);
  const check = await checkVault(d, acks);
  let ceiling: BenchReport['ceiling'];
  if (o.ceiling) {
    o.progress('driving the same requests at a bare Hono app (the ceiling)…', true);
    const bare = await startProcess(o, ['bench', '--serve-ceiling']);
    try {
      const before = processStats(bare.proc.pid!);
      const quiet = { ...o, progress: () => {} };
      const bareUrl = `http://127.0.0.1:${bare.port}`;
      const barePool = connect(bareUrl, o);
      if (warm.requests.length > 0) await drive(bareUrl, warm.requests, quiet, new Map(), { pool: barePool });
      const genBefore = process.cpuUsage();
      const c = await drive(bareUrl, reqs, quiet, new Map(), { pool: barePool });
      const gen = process.cpuUsage(genBefore);
      await barePool.close().catch(() => {});
      const rps = c.requests / c.seconds;
      ceiling = {
        requestsPerSecond: rps, latencyMs: latency(c.latencies), ratio: run.requests / run.seconds / rps,
        cpuSeconds: statsDelta(before, processStats(bare.proc.pid!)).cpuSeconds, loadGeneratorCpuSeconds: cpuSecondsOf(gen),
      };
    } finally {
      bare.proc.kill('SIGTERM');
    }
  }
  return {
    ...base,
    ...measured(warm, run, acks),
    eventsBooked: check.booked, lost: check.lost, doubled: check.doubled, corruption: check.corruption,
    node: stats, loadGeneratorCpuSeconds: cpuSecondsOf(cpu),
    ...cpuBound(stats, cpuSecondsOf(cpu), run, machineBefore && machineAfter && { busy: machineAfter.busy - machineBefore.busy, steal: machineAfter.steal - machineBefore.steal }),
    coreSpeed: speed,
    ...(commits ? { commits } : {}),
    ...(fsyncs ? { fsyncs } : {}),
    ...(gcPauses ? { gcPauses } : {}),
    ...(metricsAfter?.eventLoopDelayMs ? { eventLoopDelayMs: metricsAfter.eventLoopDelayMs } : {}),
    ...(busy !== undefined ? { mainThreadBusy: busy } : {}),
    ...(mainThread ? { mainThread } : {}),
    ...(profile ? { profile } : {}),
    ...(ceiling ? { ceiling } : {}),
  };
}

/**
 * One core's speed right now: µs per ed25519 verify (node:crypto, on this
 * thread, a 300-byte message: the node's biggest cost per signed request),
 * the median of `slices` slices of `sliceMs`.
 */
export function coreSpeed(sliceMs = 100, slices = 5): number {
  const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync('ed25519');
  const message = new Uint8Array(300).fill(7);
  const signature = nodeCrypto.sign(null, message, privateKey);
  const perVerify: number[] = [];
  for (let s = 0; s < slices; s++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < sliceMs) {
      if (!nodeCrypto.verify(null, message, publicKey, signature)) throw new Error('the speed probe\'s own signature did not verify');
      n++;
      t = performance.now();
    }
    perVerify.push(((t - t0) * 1000) / n);
  }
  return percentile(perVerify.sort((a, b) => a - b), 50);
}

/** Cores this process may run on (what the bounds divide by). */
export function machineCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** `machine`: what the whole machine spent meanwhile (machineTimes() deltas), when known. */
export function cpuBound(node: ProcessStats, generatorSeconds: number, run: { requests: number; seconds: number }, machine?: { busy: number; steal: number }): Pick<BenchReport, 'cpu'> {
  if (node.cpuSeconds === null || run.requests === 0 || run.seconds <= 0) return {};
  const cores = machineCores();
  const nodeMs = (node.cpuSeconds * 1000) / run.requests;
  const generatorMs = (generatorSeconds * 1000) / run.requests;
  const share = (seconds: number) => Math.max(0, seconds) / (run.seconds * cores);
  return {
    cpu: {
      cores,
      nodeMsPerRequest: nodeMs,
      loadGeneratorMsPerRequest: generatorMs,
      boundRequestsPerSecond: (cores * 1000) / (nodeMs + generatorMs),
      coresBusy: (node.cpuSeconds + generatorSeconds) / (run.seconds * cores),
      // The node's and this process's clocks tick finer than /proc/stat's 10 ms: a few ms either way.
      ...(machine ? { others: share(machine.busy - node.cpuSeconds - generatorSeconds), steal: share(machine.steal) } : {}),
    },
  };
}

/** Durations of one kind (fsyncs, GC pauses), from histogram buckets: each figure is the upper bound of the bucket it falls in. */
export interface DurationSummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  /** null: beyond the largest bucket. */
  maxMs: number | null;
  /** How many took longer than SPEC §10's p99 budget for a whole request (50 ms). */
  over50Ms: number;
}

interface NodeMetrics {
  /** Group commits so far: how many, their events, their seconds. */
  commits: { count: number; events: number; seconds: number };
  /** Cumulative fsync counts per kind and bucket bound (seconds; Infinity for +Inf). */
  fsyncBuckets: Record<FsyncKind, Map<number, number>>;
  /** Cumulative GC pause counts per bucket bound, every kind of collection summed. */
  gcBuckets: Map<number, number>;
  /** The main thread's busy seconds so far, and when this scrape returned (performance.now(), ms); absent where the runtime has no figure. */
  mainThread?: { activeSeconds: number; at: number };
  /** Since the previous scrape (the node's histogram restarts at each). */
  eventLoopDelayMs?: { p99: number; max: number };
}

/** The node's group-commit totals so far, and its event-loop delay since the last scrape, from /metrics on its admin port; undefined when unreadable. */
async function scrapeNode(admin: { port: number; token: string }): Promise<NodeMetrics | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${admin.port}/metrics`, { headers: { authorization: `Bearer ${admin.token}` } });
    if (!res.ok) return undefined;
    const text = await res.text();
    const value = (name: string) => metricValue(text, name);
    const commits = { count: value('nexus_commit_group_events_count'), events: value('nexus_commit_group_events_sum'), seconds: value('nexus_commit_duration_seconds_sum') };
    if (!Object.values(commits).every(Number.isFinite)) return undefined;
    const delay = { p99: value('nexus_nodejs_eventloop_lag_p99_seconds') * 1000, max: value('nexus_nodejs_eventloop_lag_max_seconds') * 1000 };
    const fsyncBuckets = histogramBuckets(text, 'nexus_vault_fsync_duration_seconds', 'kind', FSYNC_KINDS);
    const gcBuckets = new Map<number, number>();
    for (const kind of Object.values(histogramBuckets(text, 'nexus_nodejs_gc_duration_seconds', 'kind', GC_KINDS))) {
      for (const [bound, n] of kind) gcBuckets.set(bound, (gcBuckets.get(bound) ?? 0) + n);
    }
    const active = value('nexus_eventloop_active_seconds_total');
    return {
      commits, fsyncBuckets, gcBuckets,
      ...(Object.values(delay).every(Number.isFinite) ? { eventLoopDelayMs: delay } : {}),
      ...(Number.isFinite(active) ? { mainThread: { activeSeconds: active, at: performance.now() } } : {}),
    };
  } catch {
    return undefined;
  }
}

function commitsDelta(before: NodeMetrics | undefined, after: NodeMetrics | undefined): BenchReport['commits'] {
  if (!before || !after || after.commits.count <= before.commits.count) return undefined;
  const count = after.commits.count - before.commits.count;
  const events = after.commits.events - before.commits.events;
  return { count, events, eventsPerCommit: events / count, msPerCommit: ((after.commits.seconds - before.commits.seconds) * 1000) / count };
}

/** The main thread's busy share between two scrapes. */
function mainThreadBusy(before: NodeMetrics | undefined, after: NodeMetrics | undefined): number | undefined {
  const [a, b] = [before?.mainThread, after?.mainThread];
  if (!a || !b || b.at <= a.at) return undefined;
  return shareOf(b.activeSeconds - a.activeSeconds, (b.at - a.at) / 1000);
}

const FSYNC_KINDS: readonly FsyncKind[] = ['commit', 'checkpoint'];
/** Node's kinds of GC (perf_hooks), as prom-client labels its histogram. */
const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;

/** What a histogram's buckets gained between two scrapes, summarised (undefined when nothing was observed). */
export function durationSummary(before: Map<number, number>, after: Map<number, number>): DurationSummary | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const upTo = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const count = upTo.at(-1) ?? 0;
  if (count <= 0) return undefined;
  const ms = (b: number) => (b === Infinity ? null : b * 1000);
  // The first bucket that holds the p-th share of the observations.
  const at = (p: number) => ms(bounds[upTo.findIndex((n) => n >= p * count)]!);
  const within50 = upTo[bounds.findIndex((b) => b >= SLOW_MS / 1000)] ?? count;
  return { count, p50Ms: at(0.5)!, p99Ms: at(0.99)!, maxMs: at(1), over50Ms: count - within50 };
}

function fsyncsDelta(before: NodeMetrics | undefined, after: NodeMetrics | undefined): BenchReport['fsyncs'] {
  if (!before || !after) return undefined;
  const commit = durationSummary(before.fsyncBuckets.commit, after.fsyncBuckets.commit);
  if (!commit) return undefined;
  return { commit, checkpoint: durationSummary(before.fsyncBuckets.checkpoint, after.fsyncBuckets.checkpoint) ?? NONE };
}

/** None during the run (a short one may not collect); absent when the node has no such histogram. */
function gcPausesDelta(before: NodeMetrics | undefined, after: NodeMetrics | undefined): DurationSummary | undefined {
  if (!before || !after || after.gcBuckets.size === 0) return undefined;
  return durationSummary(before.gcBuckets, after.gcBuckets) ?? NONE;
}

const NONE: DurationSummary = { count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0, over50Ms: 0 };

/** The profile the node wrote at shutdown, summarised. */
function readProfile(file: string): BenchReport['profile'] {
  if (!fs.existsSync(file)) throw new Error(`the node wrote no CPU profile to ${file}`);
  return { file, ...summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile) };
}

async function runAgainstUrl(o: BenchOptions): Promise<BenchReport> {
  // A remote node: devices must be enrolled there (or enrolment open); no vault check.
  const keys = await Promise.all(Array.from({ length: o.devices }, () => generateKey(o.keyType)));
  const url = o.url!.replace(/\/$/, '');
  const offset = Date.now();
  const reqs = await presign(keys, url, o.events, o.batch, offset, o.progress);
  const acks = new Map<string, Ack>();
  const pool = connect(url, o);
  const warm = await warmUp(url, keys, reqs.length + offset, o, acks, pool);
  const run = await drive(url, reqs, o, acks, { pool });
  await pool.close().catch(() => {});
  return {
    mode: `--url ${url}`, keyType: o.keyType, batch: o.batch, concurrency: o.concurrency, rateOffered: o.rate || null,
    ...measured(warm, run, acks),
    eventsBooked: null, lost: null, doubled: null, corruption: null, node: { cpuSeconds: null, peakRssMb: null },
  };
}

/** The report's counts and speeds: sent and acknowledged include the warm-up; throughput and latency are the measured run's. */
function measured(warm: { requests: Prepared[]; sent: number }, run: Awaited<ReturnType<typeof drive>>, acks: Map<string, Ack>) {
  return {
    ...(warm.requests.length > 0 ? { warmupRequests: warm.requests.length } : {}),
    eventsSent: warm.sent + run.sent, eventsAcknowledged: acks.size,
    seconds: run.seconds, eventsPerSecond: run.acked / run.seconds, requestsPerSecond: run.requests / run.seconds,
    latencyMs: latency(run.latencies), latencyTail: latencyTail(run.sentAtMs, run.latencies), errors: run.errors,
  };
}

/**
 * The answers slower than `slowMs`, by the second of the run they were sent
 * in: how many of the run's seconds had any, and the worst seconds (most
 * slow answers first). @internal Exported for the tests.
 */
export function latencyTail(sentAtMs: readonly number[], latencies: readonly number[], slowMs = SLOW_MS, worst = 3): LatencyTail {
  const perSecond = new Map<number, { requests: number; slow: number; max: number }>();
  let slow = 0;
  let last = -1;
  for (let i = 0; i < latencies.length; i++) {
    const at = Math.floor(sentAtMs[i]! / 1000);
    last = Math.max(last, at);
    const s = perSecond.get(at) ?? { requests: 0, slow: 0, max: 0 };
    s.requests++;
    s.max = Math.max(s.max, latencies[i]!);
    if (latencies[i]! > slowMs) {
      s.slow++;
      slow++;
    }
    perSecond.set(at, s);
  }
  const seconds = [...perSecond].filter(([, s]) => s.slow > 0);
  seconds.sort(([a, x], [b, y]) => y.slow - x.slow || y.max - x.max || a - b);
  return {
    slowMs,
    slow,
    seconds: last + 1,
    secondsWithSlow: seconds.length,
    worstSeconds: seconds.slice(0, worst).map(([at, s]) => ({ atS: at, requests: s.requests, slow: s.slow, maxMs: s.max })),
  };
}

/** Percentiles of latencies in any order (a crash campaign joins several runs'). */
function latency(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

function tailRow(t: LatencyTail): [string, string] {
  if (t.slow === 0) return [`answers over ${t.slowMs} ms`, 'none'];
  const worst = t.worstSeconds.map((w) => `${w.atS} s (${w.slow} of ${w.requests}, max ${w.maxMs.toFixed(0)} ms)`).join(', ');
  return [`answers over ${t.slowMs} ms, by second sent`, `${t.slow}, in ${t.secondsWithSlow} of ${t.seconds} seconds; most in ${worst}`];
}

export function reportTable(r: BenchReport): string {
  const f = (n: number | null, d = 0) => (n === null || Number.isNaN(n) ? '—' : n.toFixed(d));
  const rows: Array<[string, string]> = [
    ['mode', `${r.mode}, ${r.keyType} signatures, batch ${r.batch}${r.warmupRequests ? `, after ${r.warmupRequests} warm-up requests` : ''}`],
    ['events sent / acknowledged / booked', `${r.eventsSent} / ${r.eventsAcknowledged} / ${r.eventsBooked ?? '—'}`],
    ['lost / doubled', `${r.lost ?? '—'} / ${r.doubled ?? '—'}`],
    ['corruption (nexus verify)', r.corruption === null ? '—' : r.corruption.length ? r.corruption[0]! : 'none'],
    ['throughput', `${f(r.eventsPerSecond)} events/s, ${f(r.requestsPerSecond)} requests/s over ${f(r.seconds, 1)} s`],
    ['latency p50 / p90 / p99 / max', `${f(r.latencyMs.p50, 2)} / ${f(r.latencyMs.p90, 2)} / ${f(r.latencyMs.p99, 2)} / ${f(r.latencyMs.max, 2)} ms`],
    ...(r.latencyTail ? [tailRow(r.latencyTail)] : []),
    [r.crashTrials ? 'node CPU (start to kill, all trials) / peak RSS' : 'node CPU during load / peak RSS', `${f(r.node.cpuSeconds, 1)} s (user ${f(r.node.userSeconds ?? null, 1)}, system ${f(r.node.systemSeconds ?? null, 1)}) / ${f(r.node.peakRssMb, 0)} MB`],
    ['load generator CPU during load', r.loadGeneratorCpuSeconds === undefined ? '—' : `${f(r.loadGeneratorCpuSeconds, 1)} s`],
    ['errors', Object.keys(r.errors).length ? Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'],
  ];
  if (r.coreSpeed) rows.push(['one core: µs per ed25519 verify', `${f(r.coreSpeed.verifyUsBefore, 1)} before / ${f(r.coreSpeed.verifyUsAfter, 1)} after the run (this machine's speed then: compare runs by it)`]);
  if (r.cpu) {
    const c = r.cpu;
    rows.push(['CPU per request: node / load generator', `${f(c.nodeMsPerRequest, 3)} / ${f(c.loadGeneratorMsPerRequest, 3)} ms: ${c.cores} cores allow at most ${f(c.boundRequestsPerSecond)} requests/s (${f(c.coresBusy * 100)}% busy)`]);
    if (c.others !== undefined) rows.push(['cores busy with other work meanwhile', `${f(c.others * 100)}% (other processes, kernel threads), stolen by the hypervisor ${f((c.steal ?? 0) * 100)}%`]);
  }
  if (r.commits) {
    rows.push(['group commits during load', `${r.commits.count}: ${f(r.commits.eventsPerCommit, 1)} events and ${f(r.commits.msPerCommit, 2)} ms each (fsync included)`]);
  }
  const durations = (x: DurationSummary) => `${x.count}, p50 / p99 / max ≤ ${f(x.p50Ms, 1)} / ${f(x.p99Ms, 1)} / ${x.maxMs === null ? '∞' : f(x.maxMs, 1)} ms, ${x.over50Ms} over ${SLOW_MS} ms`;
  if (r.fsyncs) {
    rows.push(['vault fsyncs during load: commits', durations(r.fsyncs.commit)]);
    rows.push(['  checkpoints (the next commit waits)', durations(r.fsyncs.checkpoint)]);
  }
  if (r.gcPauses) rows.push(['node GC pauses during load', durations(r.gcPauses)]);
  if (r.mainThreadBusy !== undefined) rows.push(['node main thread busy (event loop)', `${f(r.mainThreadBusy * 100)}% of the run`]);
  if (r.mainThread) {
    const m = r.mainThread;
    rows.push(['  on a core / waiting for one', `${f(m.onCore * 100)}% / ${f(m.waitingForCore * 100)}% of the run; ${f(m.msPerRequest, 3)} ms on a core per request: it allows at most ${f(m.boundRequestsPerSecond)} requests/s`]);
  }
  if (r.eventLoopDelayMs) rows.push(['node event loop late by, p99 / max', `${f(r.eventLoopDelayMs.p99, 1)} / ${f(r.eventLoopDelayMs.max, 1)} ms`]);
  if (r.keptData) rows.push(['data kept for inspection', r.keptData]);
  if (r.ceiling) {
    rows.push(['bare Hono ceiling, same requests', `${f(r.ceiling.requestsPerSecond)} requests/s, p50 ${f(r.ceiling.latencyMs.p50, 2)} / p99 ${f(r.ceiling.latencyMs.p99, 2)} ms`]);
    rows.push(['ceiling CPU / its load generator CPU', `${f(r.ceiling.cpuSeconds, 1)} s / ${f(r.ceiling.loadGeneratorCpuSeconds, 1)} s`]);
    rows.push(['node ÷ ceiling', f(r.ceiling.ratio, 2)]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  const table = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
  if (!r.profile) return table;
  const p = r.profile;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const kinds = Object.entries(p.kinds).map(([k, x]) => `${k} ${pct(x).trim()}`).join(', ');
  const top = p.top.map((t) => `  ${pct(t.share)}  ${t.name}${t.where ? ` (${t.where})` : ''}`).join('\n');
  return `${table}\n\nnode CPU profile (its whole life, ${f(p.totalMs / 1000, 1)} s; profiling slows it): ${p.file}\n  ${kinds}\n${top}`;
}
