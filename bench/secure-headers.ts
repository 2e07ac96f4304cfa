/**
 * The security headers of a booked event's answer, two ways, side by side:
 * hono's secureHeaders middleware (a Headers object filled one set() at a
 * time, copied back out by the Node adapter) against src/server/
 * secure-headers.ts (the same headers, taken once, as a plain record). Both
 * apps answer like POST /v1/events (201, a receipt-sized JSON body) on the
 * node's server adapter, in a process of their own; the figure is that
 * process's CPU per request, alternating rounds.
 *
 *   node --import tsx bench/secure-headers.ts [--seconds 3] [--rounds 6]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { listen } from '../src/runtime/serve.ts';
import { API_SECURE_HEADERS as OPTIONS, secureHeadersOnce } from '../src/server/secure-headers.ts';
import { processStats } from '../src/bench/harness.ts';
import { runLoad } from '../src/bench/load.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '6' }, serve: { type: 'boolean' } } });
const receipt = JSON.stringify({ seq: 1, leaf: 'ab'.repeat(32), amount: '1000', split: { creator: '600', pool: '300', fee: '100' }, subject: `did:key:z6Mk${'x'.repeat(44)}`, beneficiary: `did:key:z6Mk${'x'.repeat(44)}`, ts: 1, ref: 'r-000001', checkpointed: false });

if (values.serve) {
  const library = new Hono();
  library.use('*', secureHeaders(OPTIONS));
  library.post('*', async (c) => {
    await c.req.arrayBuffer();
    return c.body(receipt, 201, { 'content-type': 'application/json' });
  });
  const once = new Hono();
  const secure = secureHeadersOnce(OPTIONS);
  once.use('*', secure.middleware);
  once.post('*', async (c) => {
    await c.req.arrayBuffer();
    return secure.respond(c, receipt, 201, 'application/json');
  });
  const a = await listen(library.fetch, '127.0.0.1', 0);
  const b = await listen(once.fetch, '127.0.0.1', 0);
  process.stdout.write(`${JSON.stringify({ library: a.port, once: b.port })}\n`);
} else {
  const server = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<{ library: number; once: number }>((resolve) => server.stdout!.once('data', (d) => resolve(JSON.parse(String(d)))));
  const body = JSON.stringify({ amount: '1000', ref: 'r-000001' }).padEnd(300);
  const request = () => ({ path: '/v1/events', headers: { 'content-type': 'application/json' }, body });
  const cpuUsPerRequest = async (port: number, seconds: number) => {
    const before = processStats(server.pid!).cpuSeconds!;
    const r = await runLoad({ url: `http://127.0.0.1:${port}`, concurrency: 64, seconds, eventsPerRequest: 1, request });
    return ((processStats(server.pid!).cpuSeconds! - before) * 1e6) / r.requests;
  };
  await cpuUsPerRequest(ports.library, 1);
  await cpuUsPerRequest(ports.once, 1);
  const rounds = { library: [] as number[], once: [] as number[] };
  for (let i = 0; i < Number(values.rounds); i++) {
    rounds.library.push(await cpuUsPerRequest(ports.library, Number(values.seconds)));
    rounds.once.push(await cpuUsPerRequest(ports.once, Number(values.seconds)));
  }
  server.kill();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const show = (xs: number[]) => `${xs.map((x) => x.toFixed(1)).join(' ')} (median ${median(xs).toFixed(1)})`;
  console.log(`server CPU per request, µs, ${values.rounds} alternating rounds of ${values.seconds} s at 64 connections`);
  console.log(`  hono secureHeaders middleware:  ${show(rounds.library)}`);
  console.log(`  the same headers, taken once:   ${show(rounds.once)}`);
  console.log(`  ratio (once ÷ middleware):      ${(median(rounds.once) / median(rounds.library)).toFixed(2)}`);
}
