// The end-to-end smoke path of SPEC §9 against one built target:
//   start (empty data dir, default config: signatures + allowlist) → keygen →
//   device add → send (signed) → proof → verify-proof → stop → verify;
//   the node profiles itself (NEXUS_CPU_PROFILE) and writes the profile at stop
// Usage: node scripts/smoke-target.mjs -- <command prefix…>
//   e.g. node scripts/smoke-target.mjs -- dist/nexus-linux-x64
//        node scripts/smoke-target.mjs -- qemu-aarch64-static -L /usr/aarch64-linux-gnu dist/nexus-linux-arm64
//        node scripts/smoke-target.mjs -- node_modules/.bin/deno run -A dist/nexus.mjs
//        node scripts/smoke-target.mjs -- wine dist/nexus-win-x64.exe
import { spawn, execFile } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// Paths in the prefix are resolved here, since the commands run in a temp dir.
const prefix = process.argv.slice(process.argv.indexOf('--') + 1).map((a) => (existsSync(a) ? resolve(a) : a));
// --no-outbound: the target serves HTTP but cannot open connections itself
// (Node under wine: "connect UNKNOWN"). Then the device is enrolled offline
// before start, the signed event and the graceful stop go through this host's
// bundle and fetch, and the proof is made offline after the stop.
const noOutbound = process.argv.slice(2, process.argv.indexOf('--')).includes('--no-outbound');
const hostBundle = resolve('dist/nexus.mjs');
if (prefix.length === 0) throw new Error('usage: smoke-target.mjs -- <command…>');
const dir = mkdtempSync(join(tmpdir(), 'nexus-smoke-'));
const data = join(dir, 'data');
const t0 = Date.now();
// Output goes to files, not pipes: Node under wine cannot open piped stdio
// (EBADF). Asynchronous on purpose: a blocked event loop would not reap the
// stopped node, and `nexus stop` would see a zombie that answers kill(pid, 0).
let seq = 0;
const nexus = (...args) => new Promise((resolveRun, reject) => {
  const outFile = join(dir, `out-${seq}.txt`);
  const errFile = join(dir, `err-${seq++}.txt`);
  const fdOut = openSync(outFile, 'w');
  const fdErr = openSync(errFile, 'w');
  const child = spawn(prefix[0], [...prefix.slice(1), ...args], { cwd: dir, stdio: ['ignore', fdOut, fdErr] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  child.on('exit', (code) => {
    clearTimeout(timer);
    closeSync(fdOut);
    closeSync(fdErr);
    const stdout = readFileSync(outFile, 'utf8');
    if (code === 0) resolveRun(stdout);
    else reject(new Error(`${args.join(' ')} exited ${code}:\n${stdout}\n${readFileSync(errFile, 'utf8')}`));
  });
});
const step = (name) => process.stdout.write(`  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);

const host = (...args) => new Promise((res, rej) => execFile(process.execPath, [hostBundle, ...args], { cwd: dir, encoding: 'utf8' }, (e, out) => (e ? rej(e) : res(out))));
const did = (await nexus('keygen', '--type', 'ed25519', '--out', join(dir, 'dev.key'))).trim();
step(`keygen ${did}`);
if (noOutbound) {
  await nexus('device', 'add', did, '--data', data);
  step('device add (offline, before start)');
}
const startOut = join(dir, 'start.out');
const startFd = openSync(startOut, 'w');
const profile = join(dir, 'node.cpuprofile');
const node = spawn(prefix[0], [...prefix.slice(1), 'start', '--data', data, '--port', '0', '--admin-port', '0'], {
  cwd: dir,
  stdio: ['ignore', startFd, startFd],
  env: { ...process.env, NEXUS_CPU_PROFILE: profile },
});
try {
  const ready = await new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${readFileSync(startOut, 'utf8')}`)), 120_000);
    const poll = setInterval(() => {
      const m = /\{"event":"listening","port":(\d+),"adminPort":(\d+)\}/.exec(readFileSync(startOut, 'utf8'));
      if (m) {
        clearTimeout(timer);
        clearInterval(poll);
        resolveReady(Number(m[1]));
      }
    }, 50);
    node.on('exit', (code) => {
      clearInterval(poll);
      reject(new Error(`exited ${code}:\n${readFileSync(startOut, 'utf8')}`));
    });
  });
  step(`start → listening on ${ready} (${((Date.now() - t0) / 1000).toFixed(2)} s to ready)`);
  if (!noOutbound) {
    await nexus('device', 'add', did, '--data', data);
    step('device add');
  }
  const send = ['send', '--key', join(dir, 'dev.key'), '--amount', '100', '--data', data];
  const receipt = JSON.parse(noOutbound ? await host(...send) : await nexus(...send));
  if (receipt.seq !== 0 || receipt.split.creator !== '60') throw new Error(`unexpected receipt ${JSON.stringify(receipt)}`);
  step(`send (signed, RFC 9421) → 201${noOutbound ? ' [host client]' : ''}`);
  if (!noOutbound) {
    let proved = false;
    for (let i = 0; i < 60 && !proved; i++) {
      try {
        await nexus('proof', '0', '--data', data, '--out', join(dir, 'proof.json'));
        proved = true;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (!proved) throw new Error('no proof after 15 s');
    step('proof 0');
    await nexus('stop', '--data', data);
  } else {
    await new Promise((r) => setTimeout(r, 1500)); // the next checkpoint
    const token = readFileSync(join(data, 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${JSON.parse(readFileSync(join(data, 'node.json'), 'utf8')).adminPort}/v1/admin/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 202) throw new Error(`shutdown answered ${res.status}`);
  }
  await new Promise((r) => (node.exitCode !== null ? r() : node.once('exit', r)));
  closeSync(startFd);
  step(`stop (exit ${node.exitCode})`);
  if (node.exitCode !== 0) throw new Error(`the node exited ${node.exitCode}`);
  const cpu = JSON.parse(readFileSync(profile, 'utf8'));
  if (!(cpu.nodes?.length > 0 && cpu.samples?.length > 0)) throw new Error('the CPU profile has no samples');
  step(`CPU profile written (${cpu.samples.length} samples)`);
  if (noOutbound) {
    await nexus('proof', '0', '--data', data, '--out', join(dir, 'proof.json'));
    step('proof 0 (offline)');
  }
  const vp = await nexus('verify-proof', join(dir, 'proof.json'));
  if (!vp.startsWith('OK:')) throw new Error(vp);
  step('verify-proof → OK');
  const v = await nexus('verify', '--data', data);
  if (!v.startsWith('OK:')) throw new Error(v);
  step(`verify → ${v.trim()}`);
  if (!readFileSync(join(data, 'logs', 'nexus.log'), 'utf8').includes('"event":"node_stopped"')) throw new Error('no clean stop in the log');
  console.log(`smoke OK: ${prefix.join(' ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  if (node.exitCode === null) node.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
