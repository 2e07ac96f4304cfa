/**
 * Sentry benchmark (issue 4): signed single-event requests/s per key type
 * (ed25519 did:key, sr25519 did:peaq, secp256k1 did:io) against the dev
 * identity on the same node in the same run. Requests are signed before the
 * clock starts (each nonce once), so the load generator measures the node.
 *
 *   npm run build:bundle && node --import tsx bench/sentry.ts [--seconds 4] [--concurrency 16]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, type LoadResult } from '../src/bench/load.ts';
import { generateKey, type KeyFile, type KeyType } from '../src/adapters/identity/keys.ts';
import { signRequest } from '../src/cli/client.ts';
import { dataDir, initDataDir } from '../src/config/datadir.ts';
import { Vault } from '../src/vault/vault.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, d: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : d);
const seconds = arg('--seconds', 4);
const concurrency = arg('--concurrency', 16);
const bundle = join(root, 'dist/nexus.mjs');
if (!existsSync(bundle)) throw new Error('dist/nexus.mjs is missing: run npm run build:bundle first');

const dir = mkdtempSync(join(tmpdir(), 'nexus-sentrybench-'));
const data = dataDir(dir);
initDataDir(data);
// The default limits (200 req/s per IP) would cap the run; raise them as an operator would for a load test.
writeFileSync(data.configFile, readFileSync(data.configFile, 'utf8').replace('rate_per_identity = 1000', 'rate_per_identity = 1000000').replace('rate_per_ip = 200', 'rate_per_ip = 1000000'));
const types: KeyType[] = ['ed25519', 'sr25519', 'secp256k1'];
const devices: Record<string, KeyFile[]> = {};
{
  const vault = await Vault.open(data.vaultFile);
  for (const t of types) {
    devices[t] = await Promise.all(Array.from({ length: 8 }, () => generateKey(t)));
    for (const k of devices[t]!) vault.addDevice(k.did, `bench ${t}`);
  }
  vault.close();
}

const proc: ChildProcess = spawn(process.execPath, [bundle, 'start', '--data', dir, '--port', '0', '--admin-port', '0', '--dev'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => {
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
    const m = /"event":"listening","port":(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
});
const url = `http://127.0.0.1:${port}`;

async function presign(type: KeyType, count: number) {
  const body = new TextEncoder().encode('{"amount":"1000"}');
  const out: Array<{ path: string; headers: Record<string, string>; body: Uint8Array }> = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const key = devices[type]![i % 8]!;
    const headers = await signRequest(key, 'POST', `${url}/v1/events`, body);
    out.push({ path: '/v1/events', headers: { ...headers, 'content-type': 'application/json' }, body });
  }
  process.stderr.write(`pre-signed ${count} ${type} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return out;
}

const dev = (i: number) => ({ path: '/v1/events', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': `bench${i % 8}` }, body: '{"amount":"1000"}' });
const results: Array<{ name: string; r: LoadResult }> = [];
const perType = Math.ceil(seconds * 9000);
const signed: Record<string, Awaited<ReturnType<typeof presign>>> = {};
for (const t of types) signed[t] = await presign(t, perType + 2000);

await runLoad({ url, concurrency, seconds: 1, eventsPerRequest: 1, request: dev });
results.push({ name: 'dev identity', r: await runLoad({ url, concurrency, seconds, eventsPerRequest: 1, request: dev }) });
for (const t of types) {
  const reqs = signed[t]!;
  await runLoad({ url, concurrency, seconds: 0.5, eventsPerRequest: 1, request: (i) => (i < 2000 ? reqs[i] : undefined) });
  results.push({ name: `${t} signed`, r: await runLoad({ url, concurrency, seconds, eventsPerRequest: 1, request: (i) => reqs[2000 + i] }) });
}

console.log(`\n${seconds} s per row, concurrency ${concurrency}, node ${process.version}, durable single-event requests\n`);
console.log('| identity | req/s | p50 ms | p99 ms | errors | vs dev identity |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
const base = results[0]!.r.rps;
for (const { name, r } of results) console.log(`| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${(r.rps / base).toFixed(2)} |`);

proc.kill('SIGTERM');
await new Promise((r) => proc.once('exit', r));
rmSync(dir, { recursive: true, force: true });
