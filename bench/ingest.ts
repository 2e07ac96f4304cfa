/**
 * Ingest benchmark (issue 2): single-event requests at concurrency 1/16/64 and
 * batches of 100, dev identity, against a bare Hono "201 hello" ceiling
 * measured in the same run. Node and ceiling each run in their own process;
 * the load generator runs in this one (all on this machine's 2 cores).
 *
 *   npm run build:bundle && npm run bench     # 5 s per scenario
 *   npm run bench -- --seconds 10
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dataDir as dataDirOf, initDataDir } from '../src/config/datadir.ts';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, type LoadResult } from '../src/bench/load.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 5;

function startProcess(args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /"event":"listening","port":(\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-'));
// The default limits (200 req/s per IP) would cap the run; raise them as an operator would for a load test.
initDataDir(dataDirOf(dataDir));
const cfgFile = join(dataDir, 'nexus.toml');
writeFileSync(cfgFile, readFileSync(cfgFile, 'utf8').replace('rate_per_identity = 1000', 'rate_per_identity = 1000000').replace('rate_per_ip = 200', 'rate_per_ip = 1000000'));
const ceiling = await startProcess(['--import', 'tsx', join(root, 'bench/hello-server.ts')]);
// The bundle is what operators run; build it first (npm install does).
const bundle = join(root, 'dist/nexus.mjs');
if (!existsSync(bundle)) throw new Error('dist/nexus.mjs is missing: run npm run build:bundle first');
const node = await startProcess([bundle, 'start', '--data', dataDir, '--port', '0', '--admin-port', '0', '--dev']);

const single = (i: number) => ({ path: '/v1/events', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': `bench${i % 8}` }, body: `{"amount":"${1000 + (i % 9000)}"}` });
const batchBody = JSON.stringify({ events: Array.from({ length: 100 }, (_, k) => ({ amount: String(100 + k) })) });
const batch = (i: number) => ({ path: '/v1/events', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': `bench${i % 8}` }, body: batchBody });

const scenarios: Array<{ name: string; concurrency: number; perRequest: number; make: typeof single }> = [
  { name: 'single, c=1', concurrency: 1, perRequest: 1, make: single },
  { name: 'single, c=16', concurrency: 16, perRequest: 1, make: single },
  { name: 'single, c=64', concurrency: 64, perRequest: 1, make: single },
  { name: 'batch 100, c=16', concurrency: 16, perRequest: 100, make: batch },
];

const rows: Array<{ name: string; nexus: LoadResult; hello: LoadResult }> = [];
for (const s of scenarios) {
  // Warm both up, then measure them back to back.
  await runLoad({ url: `http://127.0.0.1:${node.port}`, concurrency: s.concurrency, seconds: 1, eventsPerRequest: s.perRequest, request: s.make });
  await runLoad({ url: `http://127.0.0.1:${ceiling.port}`, concurrency: s.concurrency, seconds: 1, eventsPerRequest: s.perRequest, request: s.make });
  const nexus = await runLoad({ url: `http://127.0.0.1:${node.port}`, concurrency: s.concurrency, seconds, eventsPerRequest: s.perRequest, request: s.make });
  const hello = await runLoad({ url: `http://127.0.0.1:${ceiling.port}`, concurrency: s.concurrency, seconds, eventsPerRequest: s.perRequest, request: s.make });
  rows.push({ name: s.name, nexus, hello });
  process.stderr.write(`${s.name}: ${Math.round(nexus.eventsPerS)} events/s (${nexus.errors} errors)\n`);
}

const f = (n: number, d = 0) => n.toFixed(d);
console.log(`\n${seconds} s per scenario, node ${process.version}, dev identity, durable (synchronous=FULL, fsync per group)\n`);
console.log('| scenario | nexus req/s | nexus events/s | p50 ms | p99 ms | hello req/s | hello p50 ms | hello p99 ms | nexus / hello (req/s) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.name} | ${f(r.nexus.rps)} | ${f(r.nexus.eventsPerS)} | ${f(r.nexus.p50, 2)} | ${f(r.nexus.p99, 2)} | ${f(r.hello.rps)} | ${f(r.hello.p50, 2)} | ${f(r.hello.p99, 2)} | ${f(r.nexus.rps / r.hello.rps, 2)} |`);
}

node.proc.kill('SIGTERM');
ceiling.proc.kill('SIGTERM');
await new Promise((r) => node.proc.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
