import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './support/node.ts';
import { runCli, startCli } from './support/spawn.ts';
import { parseConfig } from '../src/config/config.ts';
import { coreSpeed, cpuBound, durationSummary, latencyTail, machineTimes, mainThreadTimes, threadSchedTimes } from '../src/bench/harness.ts';
import { Metrics, histogramBuckets, metricValue } from '../src/telemetry/metrics.ts';

test('start fails closed (exit 2, one clear line) when no identity method is enabled', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  await runCli(['init', '--data', tmp.dir]);
  const file = join(tmp.dir, 'nexus.toml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('enabled = true', 'enabled = false'));
  const r = await runCli(['start', '--data', tmp.dir, '--port', '0', '--admin-port', '0']);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^nexus: no identity method is configured; refusing to start/);
});

test('start on an empty directory initialises it and runs with device signatures (allowlist), no --dev needed', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const node = await startCli(['--data', join(tmp.dir, 'fresh'), '--port', '0', '--admin-port', '0']);
  t.after(() => { node.proc.kill('SIGKILL'); });
  const res = await fetch(`http://127.0.0.1:${node.port}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': 'x' }, body: '{"amount":"1"}' });
  assert.equal(res.status, 401, 'the dev identity is not accepted without --dev');
  assert.equal(((await res.json()) as { code: string }).code, 'UNAUTHENTICATED');
  if (process.platform === 'linux') {
    // The request path keeps its priority; the thread pool and V8's helpers yield to it.
    const niceOf = (tid: string) => Number(readFileSync(`/proc/${node.proc.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const tids = readdirSync(`/proc/${node.proc.pid}/task`);
    assert.equal(niceOf(String(node.proc.pid)), 0);
    const helpers = tids.filter((tid) => tid !== String(node.proc.pid));
    assert.ok(helpers.length >= 4, `threads ${tids.join(' ')}`);
    assert.deepEqual(helpers.map(niceOf), helpers.map(() => 10));
  }
  node.proc.kill('SIGTERM');
  assert.equal(await node.exited, 0);
});

test('init creates nexus.toml, node.key and admin.token (0600) and keeps what exists', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const dir = join(tmp.dir, 'data');
  const r = await runCli(['init', '--data', dir]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['nexus.toml', 'node.key', 'admin.token']) assert.ok(existsSync(join(dir, f)), f);
  assert.equal(statSync(join(dir, 'node.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'admin.token')).mode & 0o777, 0o600);
  const key = readFileSync(join(dir, 'node.key'), 'utf8');
  writeFileSync(join(dir, 'nexus.toml'), readFileSync(join(dir, 'nexus.toml'), 'utf8').replace('port = 8787', 'port = 9999'));
  const again = await runCli(['init', '--data', dir]);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /nothing to do/);
  assert.equal(readFileSync(join(dir, 'node.key'), 'utf8'), key);
  assert.match(readFileSync(join(dir, 'nexus.toml'), 'utf8'), /port = 9999/);
});

test('config errors name the key and its line, and stop the start with exit 2', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  await runCli(['init', '--data', tmp.dir]);
  const file = join(tmp.dir, 'nexus.toml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('max_skew_s = 300', 'max_skew_s = 300\nenrolment = "open"'));
  const r = await runCli(['start', '--data', tmp.dir, '--dev']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown key "sentry\.signatures\.enrolment" \(line \d+\)/);
});

test('config validation: types, enums, ranges, TOML syntax', () => {
  const bad: Array<[string, RegExp]> = [
    ['[listen]\nport = "80"', /"listen.port" must be an integer \(line 2\)/],
    ['[listen]\nport = 70000', /listen.port" must be a port/],
    ['[ingress]\nmode = "open"', /"ingress.mode" must be one of direct, cloudflare, proxy/],
    ['[limits]\nbody_bytes = 0', /limits.body_bytes" must be at least 1/],
    ['[vault]\ncommit_wait_ms = -1', /"vault.commit_wait_ms" must be from 0 to 1000, got -1/],
    ['[[anchors]]\ntype = "ipfs"', /anchors\[0\].type" must be one of file, evm/],
    ['[node\norigin = "x"', /line 1/],
    ['[[routes]]\nprefix = "app"\nupstream = "http://x"', /must start with "\/"/],
    ['nonsense = 1', /unknown key "nonsense" \(line 1\)/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseConfig(text, 'nexus.toml', 'o'), re, text);
  const ok = parseConfig('[listen]\nport = 9000\n[[anchors]]\ntype = "file"\npath = "a.jsonl"', 'nexus.toml', 'origin/x');
  assert.equal(ok.listen.port, 9000);
  assert.equal(ok.listen.admin_port, 8788);
  assert.equal(ok.vault.commit_wait_ms, 5);
  assert.equal(ok.node.origin, 'origin/x');
  assert.deepEqual(ok.anchors.map((a) => ({ ...a })), [{ type: 'file', path: 'a.jsonl' }]);
});

test('--help on every command, unknown commands and flags exit 2', async (t) => {
  for (const cmd of ['init', 'start']) {
    const r = await runCli([cmd, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: nexus /);
  }
  assert.equal((await runCli(['frobnicate'])).code, 2);
  assert.equal((await runCli(['start', '--bogus'])).code, 2);
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const bad = await runCli(['start', '--port', 'abc', '--dev', '--data', tmp.dir]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--port takes a port number/);
});

test('SIGTERM drains in-flight requests before the vault closes, and a second node cannot open the same vault', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const node = await startCli(['--data', tmp.dir, '--port', '0', '--admin-port', '0', '--dev']);
  const second = await runCli(['start', '--data', tmp.dir, '--port', '0', '--admin-port', '0', '--dev']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /vault is in use by process \d+/);

  const post = (i: number) => fetch(`http://127.0.0.1:${node.port}/v1/events`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': 'drain' }, body: JSON.stringify({ amount: String(i + 1), ref: `d${i}` }),
  }).then((r) => r.status, () => 0);
  const pending = Array.from({ length: 50 }, (_, i) => post(i));
  await new Promise((r) => setTimeout(r, 5));
  node.proc.kill('SIGTERM');
  const statuses = await Promise.all(pending);
  assert.equal(await node.exited, 0);
  assert.ok(!existsSync(join(tmp.dir, 'nexus.pid')), 'pid file removed on clean stop');
  assert.ok(!existsSync(join(tmp.dir, 'vault.db.lock')), 'vault lock released on clean stop');
  const acked = statuses.filter((s) => s === 201).length;
  // Every acknowledged event is in the vault after restart.
  const again = await startCli(['--data', tmp.dir, '--port', '0', '--admin-port', '0', '--dev']);
  t.after(() => { again.proc.kill('SIGTERM'); });
  const sum = await (await fetch(`http://127.0.0.1:${again.port}/v1/summary`, { headers: { 'x-nexus-dev-identity': 'drain' } })).json() as { entries: number };
  assert.ok(sum.entries >= acked, `${sum.entries} entries, ${acked} acknowledged`);
  assert.ok(statuses.every((s) => s === 201 || s === 0), `statuses: ${statuses}`);
  again.proc.kill('SIGTERM');
  await again.exited;
});

test('the first five minutes: start, keygen, device add, send, proof, verify-proof, stop, verify', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const data = join(tmp.dir, 'data');
  const node = await startCli(['--data', data, '--port', '0', '--admin-port', '0']);
  t.after(() => { node.proc.kill('SIGKILL'); });
  const keyFile = join(tmp.dir, 'dev.key');
  const kg = await runCli(['keygen', '--type', 'ed25519', '--out', keyFile]);
  assert.equal(kg.code, 0, kg.stderr);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const did = kg.stdout.trim();
  assert.match(did, /^did:key:z6Mk/);
  assert.equal((await runCli(['device', 'add', did, '--data', data])).code, 0);
  assert.match((await runCli(['device', 'list', '--data', data])).stdout, new RegExp(did));
  const sent = await runCli(['send', '--key', keyFile, '--amount', '100', '--data', data]);
  assert.equal(sent.code, 0, sent.stderr);
  assert.equal(JSON.parse(sent.stdout).seq, 0);
  // Wait for the next checkpoint (1 s interval), then fetch the proof through the admin API.
  let proof;
  for (let i = 0; i < 30; i++) {
    proof = await runCli(['proof', '0', '--data', data, '--out', join(tmp.dir, 'proof.json')]);
    if (proof.code === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(proof!.code, 0, proof!.stderr);
  const vp = await runCli(['verify-proof', join(tmp.dir, 'proof.json')]);
  assert.equal(vp.code, 0, vp.stderr);
  assert.match(vp.stdout, /^OK: event 0 is in the log/);
  const running = await runCli(['verify', '--data', data]);
  assert.equal(running.code, 1, 'verify refuses a vault a running node holds');
  node.proc.kill('SIGTERM');
  assert.equal(await node.exited, 0);
  const v = await runCli(['verify', '--data', data]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^OK: 1 entries, \d+ checkpoints/);
  const bad = JSON.parse(readFileSync(join(tmp.dir, 'proof.json'), 'utf8'));
  bad.auditPath = ['00'.repeat(32)];
  writeFileSync(join(tmp.dir, 'bad.json'), JSON.stringify(bad));
  const vb = await runCli(['verify-proof', join(tmp.dir, 'bad.json')]);
  assert.equal(vb.code, 1);
  assert.match(vb.stderr, /INVALID/);
  // Offline: proof straight from the stopped node's vault.
  assert.equal((await runCli(['proof', '0', '--data', data, '--out', join(tmp.dir, 'p2.json')])).code, 0);
});

test('start --daemon, status, logs, export, stop: the controller that replaces start_nexus.bat', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const data = join(tmp.dir, 'd');
  const started = await runCli(['start', '--daemon', '--data', data, '--port', '0', '--admin-port', '0', '--dev']);
  assert.equal(started.code, 0, started.stderr);
  const { port, pid } = JSON.parse(started.stdout) as { port: number; pid: number };
  t.after(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* stopped */ } });
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': 'd' }, body: JSON.stringify({ amount: String(i + 1) }) });
    assert.equal(r.status, 201);
  }
  const st = await runCli(['status', '--json', '--data', data]);
  assert.equal(st.code, 0);
  const status = JSON.parse(st.stdout);
  assert.equal(status.running, true);
  assert.equal(status.pid, pid);
  assert.equal(status.entries, 4);
  const exp = await runCli(['export', '--data', data]);
  const lines = exp.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.seq), [0, 1, 2, 3]);
  assert.equal(lines[2].entry.amount, '3');
  const logs = await runCli(['logs', '--data', data]);
  assert.ok(logs.stdout.split('\n').filter(Boolean).every((l) => typeof JSON.parse(l).event === 'string'));
  assert.match(logs.stdout, /"event":"node_started"/);
  const stop = await runCli(['stop', '--data', data]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /stopped \(pid \d+\)/);
  assert.equal((await runCli(['status', '--data', data])).code, 3);
  assert.match(readFileSync(join(data, 'logs', 'nexus.log'), 'utf8'), /"event":"node_stopped","entries":4/);
  const offline = await runCli(['export', '--data', data, '--out', join(tmp.dir, 'x.jsonl')]);
  assert.equal(offline.code, 0);
  assert.equal(readFileSync(join(tmp.dir, 'x.jsonl'), 'utf8').trim().split('\n').length, 4);
});

test('nexus bench: signed load against a fresh node, then lost/doubled/verify from the vault; --crash-trials kills it under load', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const report = join(tmp.dir, 'r.json');
  const profiles = join(tmp.dir, 'prof');
  const run = await runCli(['bench', '--events', '400', '--batch', '4', '--concurrency', '8', '--devices', '3', '--warmup', '25', '--ceiling', '--cpu-prof', profiles, '--data', join(tmp.dir, 'a'), '--report', report]);
  assert.equal(run.code, 0, run.stderr);
  const r = JSON.parse(readFileSync(report, 'utf8'));
  // The node's CPU per request and what it allows on this machine's cores.
  assert.ok(r.cpu.cores >= 1 && r.cpu.nodeMsPerRequest > 0 && r.cpu.loadGeneratorMsPerRequest > 0, JSON.stringify(r.cpu));
  assert.ok(Math.abs(r.cpu.boundRequestsPerSecond - (r.cpu.cores * 1000) / (r.cpu.nodeMsPerRequest + r.cpu.loadGeneratorMsPerRequest)) < 1e-6);
  assert.match(run.stdout, /CPU per request: node \/ load generator\s+[\d.]+ \/ [\d.]+ ms: \d+ cores allow at most \d+ requests\/s/);
  // How fast one core was before and after (an ed25519 verify takes tens of µs on any machine this runs on).
  for (const us of [r.coreSpeed.verifyUsBefore, r.coreSpeed.verifyUsAfter]) assert.ok(us > 1 && us < 10_000, JSON.stringify(r.coreSpeed));
  assert.match(run.stdout, /one core: µs per ed25519 verify\s+[\d.]+ before \/ [\d.]+ after the run/);
  // What else kept the machine's cores busy meanwhile (Linux /proc/stat): a share of all cores.
  assert.ok(r.cpu.others >= 0 && r.cpu.others <= 1 && r.cpu.steal >= 0 && r.cpu.steal <= 1, JSON.stringify(r.cpu));
  assert.match(run.stdout, /cores busy with other work meanwhile\s+\d+% \(other processes, kernel threads\), stolen by the hypervisor \d+%/);
  // The node's group commits during the measured run (its metrics): exactly the measured run's 400 events, not the warm-up's 100.
  assert.equal(r.commits.events, 400, JSON.stringify(r.commits));
  assert.ok(r.commits.count >= 1 && r.commits.count <= 100 && r.commits.msPerCommit > 0, JSON.stringify(r.commits));
  assert.equal(r.commits.eventsPerCommit, 400 / r.commits.count);
  assert.match(run.stdout, /group commits during load\s+\d+: [\d.]+ events and [\d.]+ ms each \(fsync included\)/);
  // Its fsyncs meanwhile: at least one per group commit (a signed checkpoint's row has its own), bounds in order.
  const syncs = r.fsyncs.commit;
  assert.ok(syncs.count >= r.commits.count && syncs.p50Ms > 0 && syncs.p50Ms <= syncs.p99Ms && (syncs.maxMs === null || syncs.p99Ms <= syncs.maxMs) && syncs.over50Ms <= syncs.count, JSON.stringify(r.fsyncs));
  assert.match(run.stdout, /vault fsyncs during load: commits\s+\d+, p50 \/ p99 \/ max ≤ [\d.]+ \/ [\d.]+ \/ (?:[\d.]+|∞) ms, \d+ over 50 ms/);
  // Its GC pauses meanwhile (a run this short may have none), bounds in order.
  const gc = r.gcPauses;
  assert.ok(gc && gc.count >= 0 && gc.over50Ms <= gc.count, JSON.stringify(gc));
  if (gc.count > 0) assert.ok(gc.p50Ms > 0 && gc.p50Ms <= gc.p99Ms && (gc.maxMs === null || gc.p99Ms <= gc.maxMs), JSON.stringify(gc));
  assert.match(run.stdout, /node GC pauses during load\s+\d+, p50 \/ p99 \/ max ≤ [\d.]+ \/ [\d.]+ \/ (?:[\d.]+|∞) ms, \d+ over 50 ms/);
  // And how late its event loop ran meanwhile (its metrics' histogram, restarted by the scrape before the run).
  assert.ok(r.eventLoopDelayMs && r.eventLoopDelayMs.max >= r.eventLoopDelayMs.p99 && r.eventLoopDelayMs.p99 >= 0, JSON.stringify(r.eventLoopDelayMs));
  assert.match(run.stdout, /node event loop late by, p99 \/ max\s+[\d.]+ \/ [\d.]+ ms/);
  // And how busy its main thread was over the run (its event-loop utilisation counter).
  assert.ok(r.mainThreadBusy > 0 && r.mainThreadBusy <= 1, String(r.mainThreadBusy));
  assert.match(run.stdout, /node main thread busy \(event loop\)\s+\d+% of the run/);
  // Where that main thread was (Linux schedstat): on a core or waiting for one, within the run's wall time.
  const m = r.mainThread;
  assert.ok(m.onCore > 0 && m.waitingForCore >= 0 && m.onCore + m.waitingForCore <= 1.01 && m.msPerRequest > 0, JSON.stringify(m));
  assert.equal(m.boundRequestsPerSecond, 1000 / m.msPerRequest);
  assert.match(run.stdout, /  on a core \/ waiting for one\s+\d+% \/ \d+% of the run; [\d.]+ ms on a core per request: it allows at most \d+ requests\/s/);
  // --cpu-prof: the node under test wrote its profile there, and the bench summarised it.
  assert.ok(r.profile.file.startsWith(profiles) && existsSync(r.profile.file), r.profile.file);
  assert.ok(r.profile.totalMs > 0 && r.profile.top.length > 0);
  assert.ok(Math.abs(Object.values(r.profile.kinds as Record<string, number>).reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.match(run.stdout, /node CPU profile \(its whole life/);
  for (const bad of [['--url', 'http://127.0.0.1:9'], ['--crash-trials', '1']]) {
    const refused = await runCli(['bench', '--cpu-prof', profiles, ...bad]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /--cpu-prof profiles a node the bench starts and stops/);
  }
  // 25 warm-up requests of 4 events come first: booked and checked, not measured.
  assert.equal(r.warmupRequests, 25);
  assert.equal(r.eventsSent, 500);
  assert.equal(r.eventsAcknowledged, 500);
  assert.equal(r.eventsBooked, 500);
  assert.equal(Math.round(r.requestsPerSecond * r.seconds), 100, 'only the measured run counts for throughput');
  assert.equal(r.lost, 0);
  assert.equal(r.doubled, 0);
  assert.deepEqual(r.corruption, []);
  assert.ok(r.eventsPerSecond > 0 && r.latencyMs.p99 >= r.latencyMs.p50);
  // The slow answers, by the second they were sent in: consistent with the percentiles.
  const tail = r.latencyTail;
  assert.ok(tail.seconds >= 1 && tail.seconds <= Math.ceil(r.seconds) && tail.secondsWithSlow <= tail.seconds && tail.slow <= 100 && tail.worstSeconds.length <= 3, JSON.stringify(tail));
  assert.ok(tail.worstSeconds.every((w: { atS: number; slow: number; requests: number }) => w.atS < r.seconds && w.slow <= w.requests), JSON.stringify(tail));
  assert.equal(tail.slow > 0, r.latencyMs.max > 50, JSON.stringify({ tail, latency: r.latencyMs }));
  assert.match(run.stdout, /answers over 50 ms(?:, by second sent)?\s+(?:none|\d+, in \d+ of \d+ seconds; most in \d+ s \(\d+ of \d+, max \d+ ms\))/);
  assert.match(run.stdout, /lost \/ doubled\s+0 \/ 0/);
  // The same requests went to the bare Hono app: every one answered, a ratio reported.
  assert.ok(r.ceiling.requestsPerSecond > 0 && r.ceiling.latencyMs.p50 > 0, JSON.stringify(r.ceiling));
  assert.equal(r.ceiling.ratio, r.requestsPerSecond / r.ceiling.requestsPerSecond);
  assert.ok(typeof r.node.userSeconds === 'number' && r.node.userSeconds >= 0 && r.loadGeneratorCpuSeconds > 0, JSON.stringify(r.node));
  assert.match(run.stdout, /node ÷ ceiling\s+\d/);
  // Without --data the bench makes its own directory, and removes it after a clean run.
  const own = join(tmp.dir, 'tmp');
  mkdirSync(own);
  const crash = await runCli(['bench', '--crash-trials', '2', '--events', '3000', '--report', report], { TMPDIR: own, TEMP: own, TMP: own });
  assert.equal(crash.code, 0, crash.stderr);
  assert.deepEqual(readdirSync(own).filter((f) => f.startsWith('nexus-bench-')), [], 'a clean run leaves no data directory behind');
  const c = JSON.parse(readFileSync(report, 'utf8'));
  assert.equal(c.crashTrials.length, 2);
  assert.ok(c.crashTrials.every((x: { lost: number; doubled: number }) => x.lost === 0 && x.doubled === 0));
  assert.deepEqual(c.corruption, []);
  // The report covers the whole campaign: what every trial sent, and every acknowledged event was sent.
  assert.equal(c.eventsSent, c.crashTrials.reduce((n: number, x: { sent: number }) => n + x.sent, 0));
  assert.ok(c.eventsSent >= c.eventsAcknowledged, `${c.eventsSent} sent, ${c.eventsAcknowledged} acknowledged`);
  // The nodes' CPU and peak RSS, read before each kill (Linux /proc).
  assert.ok(c.node.cpuSeconds > 0 && c.node.peakRssMb > 10 && c.node.peakRssMb < 1000, JSON.stringify(c.node));
  const l = c.latencyMs;
  assert.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, `percentiles of all trials in order: ${JSON.stringify(l)}`);
});

test('nexus bench: a run whose requests were refused fails, naming what refused them', async (t) => {
  // A node that refuses every request answers fast: those figures must not pass for a measurement.
  let seen = 0;
  const refusing = createServer((req, res) => {
    seen++;
    req.resume();
    req.on('end', () => {
      res.writeHead(401, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ status: 401, code: 'DEVICE_NOT_ENROLLED' }));
    });
  });
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  t.after(() => refusing.close());
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const report = join(tmp.dir, 'r.json');
  const run = await runCli(['bench', '--url', `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`, '--events', '20', '--concurrency', '2', '--devices', '1', '--report', report]);
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.equal(seen, 20);
  assert.match(run.stderr, /nexus bench: 20 request\(s\) failed \(DEVICE_NOT_ENROLLED 20\)/);
  // The report is still written: it is how the operator sees what happened.
  assert.deepEqual(JSON.parse(readFileSync(report, 'utf8')).errors, { DEVICE_NOT_ENROLLED: 20 });
});

test('nexus bench: fsync figures come from the node\'s histogram, bucket bounds between two scrapes', async () => {
  const metrics = new Metrics({ processMetrics: false });
  const observe = (kind: 'commit' | 'checkpoint', ...ms: number[]) => { for (const x of ms) metrics.vaultFsyncSeconds.observe({ kind }, x / 1000); };
  const scrape = async () => histogramBuckets(await metrics.text(), 'nexus_vault_fsync_duration_seconds', 'kind', ['commit', 'checkpoint'] as const);
  observe('commit', 0.3, 700); // before the run: must not count
  const before = await scrape();
  observe('commit', ...Array(97).fill(0.4), 3, 60, 4000);
  observe('checkpoint', 8);
  const after = await scrape();
  assert.equal(after.commit.get(Infinity), 102);
  // 100 during the run: half within 0.5 ms, the 99th in the 50–100 ms bucket, one beyond the last (2.5 s).
  assert.deepEqual(durationSummary(before.commit, after.commit), { count: 100, p50Ms: 0.5, p99Ms: 100, maxMs: null, over50Ms: 2 });
  assert.deepEqual(durationSummary(before.checkpoint, after.checkpoint), { count: 1, p50Ms: 10, p99Ms: 10, maxMs: 10, over50Ms: 0 });
  // Nothing observed in between: no summary.
  assert.equal(durationSummary(after.commit, after.commit), undefined);
});

test('nexus bench: the node\'s GC pauses are counted in the same buckets as its fsyncs', async () => {
  const metrics = new Metrics();
  const gcBuckets = async () => histogramBuckets(await metrics.text(), 'nexus_nodejs_gc_duration_seconds', 'kind', ['minor'] as const).minor;
  // Young garbage until a scavenge has been observed (perf_hooks reports GCs asynchronously).
  let keep: unknown[] = [];
  for (let i = 0; i < 200 && ((await gcBuckets()).get(Infinity) ?? 0) === 0; i++) {
    keep = Array.from({ length: 50_000 }, (_, k) => ({ k }));
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(keep.length > 0);
  const gc = await gcBuckets();
  assert.ok((gc.get(Infinity) ?? 0) > 0, 'a scavenge was observed');
  // The fsyncs' bounds (prom-client's own for GC stop at 1, 10 and 100 ms, too coarse to tell a 20 ms pause from 90).
  assert.deepEqual([...gc.keys()], [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, Infinity]);
});

test('nexus bench: the core speed probe times what it says: a core kept busy meanwhile by another process makes it slower', async (t) => {
  const alone = coreSpeed(50, 3);
  assert.ok(alone > 1 && alone < 10_000, String(alone));
  // Spinners on every core: this thread now shares its core, so each verify takes longer in wall time.
  const { spawn } = await import('node:child_process');
  const { availableParallelism } = await import('node:os');
  const spinners = Array.from({ length: availableParallelism() * 2 }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  t.after(() => spinners.forEach((p) => p.kill('SIGKILL')));
  await new Promise((r) => setTimeout(r, 200));
  const shared = coreSpeed(50, 3);
  assert.ok(shared > alone * 1.3, `alone ${alone.toFixed(1)} µs, sharing its core ${shared.toFixed(1)} µs`);
});

test('nexus bench: slow answers are counted by the second they were sent in, the worst seconds first', () => {
  // Second 0: 10 answers, 2 slow; second 1: 10, none slow (50 ms exactly is not over); second 2: 5, all slow.
  const sent = [...Array.from({ length: 10 }, (_, i) => i * 99.99), ...Array.from({ length: 10 }, (_, i) => 1000 + i * 50), ...Array.from({ length: 5 }, (_, i) => 2000 + i)];
  const lat = [...[60, 51, 1, 2, 3, 4, 5, 6, 7, 8], ...Array(10).fill(50), ...[70, 300, 80, 90, 55]];
  assert.deepEqual(latencyTail(sent, lat), {
    slowMs: 50, slow: 7, seconds: 3, secondsWithSlow: 2,
    worstSeconds: [{ atS: 2, requests: 5, slow: 5, maxMs: 300 }, { atS: 0, requests: 10, slow: 2, maxMs: 60 }],
  });
  // Ties in slow answers: the slower second first; the list is cut at `worst`. A second
  // that answered nothing (a stall) is still a second of the run.
  const tie = latencyTail([0, 1000, 3000], [70, 90, 80], 50, 2);
  assert.deepEqual(tie.worstSeconds.map((w) => w.atS), [1, 3]);
  assert.equal(tie.seconds, 4);
  assert.deepEqual(latencyTail([], []), { slowMs: 50, slow: 0, seconds: 0, secondsWithSlow: 0, worstSeconds: [] });
});

test('metrics: the main thread\'s busy seconds count work on the event loop, not time it waits', async () => {
  const metrics = new Metrics();
  const active = async () => metricValue(await metrics.text(), 'nexus_eventloop_active_seconds_total');
  const before = await active();
  const until = performance.now() + 200;
  while (performance.now() < until); // busy
  await new Promise((r) => setTimeout(r, 300)); // idle
  const busy = (await active()) - before;
  assert.ok(busy >= 0.18 && busy < 0.3, `${busy} s busy of 0.2 s busy and 0.3 s idle`);
});

test('nexus bench: a thread\'s time on a core (schedstat) counts its own work; shares are of the wall time between samples', () => {
  // The same thread's CPU as /proc/<pid>/task/<tid>/stat counts it (utime + stime, in 10 ms ticks).
  const ticks = () => readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((n, x) => n + Number(x), 0) / 100;
  const before = { at: performance.now(), times: threadSchedTimes(process.pid) };
  const ticksBefore = ticks();
  assert.ok(before.times, '/proc/<pid>/task/<tid>/schedstat is readable');
  const own = process.cpuUsage();
  const until = performance.now() + 300;
  let spin = 0;
  while (performance.now() < until) spin++;
  const after = { at: performance.now(), times: threadSchedTimes(process.pid) };
  const ticksAfter = ticks();
  const ownSeconds = (() => { const u = process.cpuUsage(own); return (u.user + u.system) / 1e6; })();
  // This spin ran on the main thread: schedstat counts its time on a core as the thread's own stat does,
  // and never more than the whole process spent (however busy the machine, the spin got some core).
  const onCore = after.times!.onCore - before.times!.onCore;
  assert.ok(onCore > 0.05 && Math.abs(onCore - (ticksAfter - ticksBefore)) <= 0.03 && onCore <= ownSeconds + 0.01, `on a core ${onCore} s, thread stat ${ticksAfter - ticksBefore} s, process CPU ${ownSeconds} s (${spin})`);
  assert.ok(after.times!.waiting >= before.times!.waiting);
  // The arithmetic, on made-up samples: 2 s of wall time, 1.5 s on a core, 0.25 s waiting, 3000 requests.
  const m = mainThreadTimes({ at: 1000, times: { onCore: 10, waiting: 1 } }, { at: 3000, times: { onCore: 11.5, waiting: 1.25 } }, 3000)!;
  assert.deepEqual(m, { onCore: 0.75, waitingForCore: 0.125, msPerRequest: 0.5, boundRequestsPerSecond: 2000 });
  // Nothing to say without both samples or without requests.
  assert.equal(mainThreadTimes({ at: 0, times: undefined }, { at: 1000, times: { onCore: 1, waiting: 0 } }, 10), undefined);
  assert.equal(mainThreadTimes({ at: 0, times: { onCore: 0, waiting: 0 } }, { at: 1000, times: { onCore: 1, waiting: 0 } }, 0), undefined);
});

test('nexus bench: the machine CPU accounting (/proc/stat) counts the work of this process, and the rest is what others did', () => {
  // Linux only, like the report's field (this machine runs Linux).
  const before = machineTimes();
  assert.ok(before, '/proc/stat is readable');
  const own = process.cpuUsage();
  const until = performance.now() + 300;
  let spin = 0;
  while (performance.now() < until) spin++;
  const ownSeconds = (() => { const u = process.cpuUsage(own); return (u.user + u.system) / 1e6; })();
  const after = machineTimes()!;
  // /proc/stat ticks every 10 ms per core: our own work shows, give or take a tick or two.
  assert.ok(after.busy - before.busy >= ownSeconds - 0.03, `machine ${after.busy - before.busy} s, this process ${ownSeconds} s (${spin})`);
  assert.ok(after.steal >= before.steal);
  // Others: what the machine spent beyond node and load generator, as a share of every core over the run.
  const r = cpuBound({ cpuSeconds: 2, userSeconds: 1.5, systemSeconds: 0.5, peakRssMb: 100 }, 1, { requests: 1000, seconds: 2 }, { busy: 3.5, steal: 0.2 });
  const cores = r.cpu!.cores;
  assert.equal(r.cpu!.others, 0.5 / (2 * cores));
  assert.equal(r.cpu!.steal, 0.2 / (2 * cores));
  // The machine's ticks are coarser than the processes' clocks: never below zero.
  assert.equal(cpuBound({ cpuSeconds: 2, userSeconds: 2, systemSeconds: 0, peakRssMb: 1 }, 1, { requests: 10, seconds: 1 }, { busy: 2.99, steal: 0 }).cpu!.others, 0);
});
