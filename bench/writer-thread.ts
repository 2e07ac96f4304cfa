/**
 * Would the targets of SPEC §10 (50,000 events/s in signed batches of 100;
 * 5,000 signed single-event requests/s) come within reach if the vault's
 * writer ran on a thread of its own? (issue 8). Today the node's main thread
 * parses, hands verifies to the thread pool, books every group in SQLite and
 * answers; in batch runs it is 92–96% busy while the two cores are 63–68%.
 *
 * This measures the vault part both ways, side by side, alternating rounds:
 *
 *   inline   the real GroupCommitter, vault and Merkle tree on this thread
 *            (as the node runs them)
 *   thread   the same three in a worker thread; this thread only sends each
 *            submission (structured clone: bigint amounts, evidence bytes)
 *            and receives its receipts — what an asynchronous vault API
 *            would cost the main thread
 *
 * Both drive the same pre-built signed-request-shaped submissions in a closed
 * loop (`--concurrency` in flight), fresh vault each run. Reported per event:
 * this thread's busy time (event-loop utilisation), the writer thread's busy
 * time, process CPU, and events/s. With `--node-report` (the JSON of a
 * `nexus bench` run with the same `--batch`) it also projects the node: its main thread
 * minus the inline vault plus the hand-off, against the writer thread and the
 * cores. A projection from two runs, not a measurement of a node that exists.
 *
 *   node --import tsx bench/writer-thread.ts [--events 200000] [--batch 100]
 *     [--concurrency 16] [--subjects 16] [--rounds 3] [--node-report bench-report.json]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Outcome, Submission } from '../src/vault/group-commit.ts';
import { SPEC_TARGETS, machineCores } from '../src/bench/harness.ts';
import { openVaultAlone } from './support/vault-alone.ts';

type ToWriter = { id: number; submission: Submission } | { close: true };
type FromWriter = { id: number; outcome?: Outcome; error?: string } | { closed: true; busyMs: number; booked: number };

if (!isMainThread) {
  // The writer thread: books what it is sent, answers with the outcome.
  const port = parentPort!;
  const { committer, vault, close } = await openVaultAlone(workerData.dir as string);
  const elu0 = performance.eventLoopUtilization();
  port.on('message', (m: ToWriter) => {
    if ('close' in m) {
      const busyMs = performance.eventLoopUtilization(elu0).active;
      const booked = vault.size;
      void close().then(() => port.postMessage({ closed: true, busyMs, booked } satisfies FromWriter));
      return;
    }
    committer.submit(m.submission).then(
      (outcome) => port.postMessage({ id: m.id, outcome } satisfies FromWriter),
      (e: unknown) => port.postMessage({ id: m.id, error: String(e) } satisfies FromWriter),
    );
  });
  port.postMessage({ ready: true });
} else {
  await main();
}

interface Run {
  eventsPerSecond: number;
  /** This (the main) thread's busy time per event, µs. */
  mainUs: number;
  /** The writer thread's busy time per event, µs (thread mode only). */
  writerUs?: number;
  /** Process CPU per event, µs (all threads). */
  cpuUs: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '200000' },
      batch: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '16' },
      subjects: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '3' },
      'node-report': { type: 'string' },
    },
  });
  const B = Number(values.batch);
  const C = Number(values.concurrency);
  const requests = Math.ceil(Number(values.events) / B);
  const rounds = Number(values.rounds);

  // What nexus bench sends, as the Sentry hands it on: one subject per device,
  // ~330 bytes of evidence (signature base + signature), a nonce, a ref per event.
  const subjects = Array.from({ length: Number(values.subjects) }, (_, i) => `did:key:z6Mk${randomBytes(30).toString('base64url')}${i}`);
  const makePlan = (): Submission[] => {
    let ref = 0;
    return Array.from({ length: requests }, (_, r) => {
      const subject = subjects[r % subjects.length]!;
      return {
        subject,
        events: Array.from({ length: B }, () => ({ beneficiary: subject, amount: 1234n, ref: `b${ref++}` })),
        evidence: randomBytes(330),
        nonce: { key: `${subject} ${randomBytes(16).toString('base64url')}`, expires: Date.now() + 600_000 },
      };
    });
  };

  /** Drives `submit` with C requests in flight until all are answered; checks every answer. */
  async function drive(plan: Submission[], submit: (s: Submission) => Promise<Outcome>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: C }, async () => {
      while (next < plan.length) {
        const s = plan[next++]!;
        const outcome = await submit(s);
        if (outcome.kind !== 'booked' || outcome.receipts.length !== s.events.length) throw new Error(`not booked: ${outcome.kind}`);
      }
    }));
  }

  async function measure(mode: 'inline' | 'thread'): Promise<Run> {
    const dir = mkdtempSync(join(tmpdir(), `nexus-writer-${mode}-`));
    const plan = makePlan();
    const events = plan.length * B;
    try {
      let submit: (s: Submission) => Promise<Outcome>;
      let finish: () => Promise<{ writerMs?: number; booked: number }>;
      let died: Promise<never> = new Promise(() => {});
      if (mode === 'inline') {
        const w = await openVaultAlone(dir);
        submit = (s) => w.committer.submit(s);
        finish = async () => {
          const booked = w.vault.size;
          await w.close();
          return { booked };
        };
      } else {
        // tsx's hooks do not reach a worker's entry on Node 20: it loads this file through tsx's API.
        const self = JSON.stringify(import.meta.url);
        const worker = new Worker(`import('tsx/esm/api').then((tsx) => tsx.tsImport(${self}, ${self}))`, { eval: true, workerData: { dir } });
        // A writer that dies fails the run instead of leaving its requests unanswered.
        died = new Promise<never>((_, reject) => worker.once('error', reject));
        await Promise.race([new Promise((resolve) => worker.once('message', resolve)), died]);
        const waiting = new Map<number, { resolve: (o: Outcome) => void; reject: (e: Error) => void }>();
        let ids = 0;
        let closed: ((m: { busyMs: number; booked: number }) => void) | undefined;
        worker.on('message', (m: FromWriter) => {
          if ('closed' in m) return closed?.(m);
          const w = waiting.get(m.id)!;
          waiting.delete(m.id);
          if (m.outcome) w.resolve(m.outcome);
          else w.reject(new Error(m.error));
        });
        submit = (s) =>
          new Promise((resolve, reject) => {
            const id = ids++;
            waiting.set(id, { resolve, reject });
            worker.postMessage({ id, submission: s } satisfies ToWriter);
          });
        finish = async () => {
          const done = new Promise<{ busyMs: number; booked: number }>((resolve) => (closed = resolve));
          worker.postMessage({ close: true } satisfies ToWriter);
          const { busyMs, booked } = await Promise.race([done, died]);
          await worker.terminate();
          return { writerMs: busyMs, booked };
        };
      }
      const elu0 = performance.eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.race([drive(plan, submit), died]);
      const seconds = (performance.now() - t0) / 1000;
      const elu = performance.eventLoopUtilization(elu0);
      const cpu = process.cpuUsage(cpu0);
      const { writerMs, booked } = await finish();
      if (booked !== events) throw new Error(`${mode}: ${booked} booked of ${events}`);
      return {
        eventsPerSecond: events / seconds,
        mainUs: (elu.active * 1000) / events,
        ...(writerMs !== undefined ? { writerUs: (writerMs * 1000) / events } : {}),
        cpuUs: (cpu.user + cpu.system) / events,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const runs: Record<'inline' | 'thread', Run[]> = { inline: [], thread: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['inline', 'thread'] as const) {
      process.stderr.write(`round ${round}/${rounds}: ${mode}\n`);
      runs[mode].push(await measure(mode));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const med = (mode: 'inline' | 'thread', k: keyof Run) => median(runs[mode].map((r) => r[k] ?? NaN));
  const f = (x: number) => (Number.isNaN(x) ? '—' : x.toFixed(1));
  const n = (x: number) => Math.round(x).toLocaleString('en-US');

  console.log(`\nthe vault alone, ${requests} requests × ${B} events, ${C} in flight — medians of ${rounds} rounds, ${machineCores()} cores, node ${process.version}\n`);
  console.log('| writer | events/s | main thread busy, µs/event | writer thread busy, µs/event | process CPU, µs/event |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const mode of ['inline', 'thread'] as const) {
    console.log(`| ${mode} | ${n(med(mode, 'eventsPerSecond'))} | ${f(med(mode, 'mainUs'))} | ${mode === 'inline' ? f(med(mode, 'mainUs')) : f(med(mode, 'writerUs'))} | ${f(med(mode, 'cpuUs'))} |`);
  }
  console.log(`\nper round: ${JSON.stringify(runs, (_, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`);

  const reportFile = values['node-report'];
  if (!reportFile) return;
  // The node as measured by nexus bench, with its vault moved: its main
  // thread loses the inline vault and gains the hand-off; the cores pay both.
  const r = JSON.parse(readFileSync(reportFile, 'utf8')) as {
    batch: number; eventsPerSecond: number; mainThreadBusy?: number;
    cpu: { cores: number; nodeMsPerRequest: number; loadGeneratorMsPerRequest: number };
  };
  if (r.batch !== B || r.mainThreadBusy === undefined) throw new Error(`${reportFile}: needs a nexus bench report of batches of ${B} with mainThreadBusy`);
  const nodeMainUs = (r.mainThreadBusy * 1e6) / r.eventsPerSecond;
  const inlineUs = med('inline', 'mainUs');
  const handoffUs = med('thread', 'mainUs');
  const writerUs = med('thread', 'writerUs');
  const mainAfter = nodeMainUs - inlineUs + handoffUs;
  const cpuAfter = ((r.cpu.nodeMsPerRequest + r.cpu.loadGeneratorMsPerRequest) * 1000) / B - med('inline', 'cpuUs') + med('thread', 'cpuUs');
  const caps = { main: 1e6 / mainAfter, writer: 1e6 / writerUs, cores: (r.cpu.cores * 1e6) / cpuAfter };
  console.log(`\nprojection from ${reportFile} (${n(r.eventsPerSecond)} events/s, main thread ${f(r.mainThreadBusy * 100)}% busy):`);
  console.log(`  node main thread now ${f(nodeMainUs)} µs/event → ${f(mainAfter)} µs/event with the writer on its own thread (−${f(inlineUs)} inline vault, +${f(handoffUs)} hand-off)`);
  console.log(`  most events/s: main thread ${n(caps.main)}, writer thread ${n(caps.writer)}, ${r.cpu.cores} cores at ${f(cpuAfter)} µs CPU/event (node + load generator) ${n(caps.cores)}`);
  const target = B === 1 ? SPEC_TARGETS.singleRequestsPerSecond : SPEC_TARGETS.batchEventsPerSecond;
  const best = Math.min(caps.main, caps.writer, caps.cores);
  console.log(`  → at best ${n(best)} events/s (${(best / target).toFixed(2)}× the ${n(target)} target), if every thread ran flat out`);
}
