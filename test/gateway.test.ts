import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage } from 'node:http';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startTestNode, devPost, type TestNode } from './support/node.ts';
import { signRequest } from '../src/cli/client.ts';
import { generateKey } from '../src/adapters/identity/keys.ts';

let upstream: Server;
let upstreamUrl = '';
const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
let node: TestNode;
let releaseStream: () => void = () => {};
const firstChunkRead = new Promise<void>((r) => { releaseStream = r; });

before(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url!.startsWith('/slow')) {
        setTimeout(() => res.end('late'), 2000);
        return;
      }
      if (req.url!.startsWith('/stream')) {
        // The first chunk goes out at once; the rest only when the test has
        // read it — a buffering proxy would never deliver that first chunk.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('chunk 0\n');
        void firstChunkRead.then(() => res.end('chunk 1\n'));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(JSON.stringify({ path: req.url, subject: req.headers['x-nexus-subject'] }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  node = await startTestNode({ configure: (c) => {
    c.sentry.signatures.enrollment = 'open';
    c.routes = [
      { prefix: '/app', upstream: upstreamUrl, strip_prefix: true, timeout_ms: 500 },
      { prefix: '/keep', upstream: `${upstreamUrl}/base`, strip_prefix: false },
      { prefix: '/down', upstream: 'http://127.0.0.1:9', strip_prefix: true },
    ];
  } });
});
after(async () => {
  await node.cleanup();
  upstream.close();
});

test('unauthenticated requests never reach the upstream', async () => {
  const before = seen.length;
  const res = await fetch(`${node.url}/app/hello`);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  assert.equal(seen.length, before);
});

test('accepted requests are forwarded with X-Nexus-Subject and a verifiable attestation; client X-Nexus-* headers are dropped', async () => {
  const res = await fetch(`${node.url}/app/hello/world?x=1`, { headers: { 'x-nexus-dev-identity': 'alice', 'x-nexus-subject': 'did:key:forged', 'x-nexus-attestation': 'forged' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-upstream'), 'yes');
  assert.deepEqual(await res.json(), { path: '/hello/world?x=1', subject: 'dev:alice' });
  const got = seen.at(-1)!;
  assert.equal(got.headers['x-nexus-subject'], 'dev:alice');
  assert.equal(got.headers['x-nexus-dev-identity'], undefined, 'credentials for the node are not passed on');
  // The upstream's own check (the README's example verifier).
  const key = readFileSync(node.data.proxyKeyFile, 'utf8').trim();
  const m = /^t=(\d+),sig=(.+)$/.exec(String(got.headers['x-nexus-attestation']))!;
  const want = createHmac('sha256', key).update(`${m[1]}\nGET\n/hello/world\ndev:alice`).digest('base64');
  assert.equal(m[2], want);
  assert.ok(Math.abs(Date.now() / 1000 - Number(m[1])) < 60);
  assert.equal(got.headers['x-forwarded-for'], '127.0.0.1');
});

test('the path is kept unless strip_prefix; bodies go through, also for signed requests', async () => {
  const r = await devPost(`${node.url}/keep/thing`, { hello: 'world' }, 'bob');
  assert.equal(r.status, 200);
  assert.equal(seen.at(-1)!.url, '/base/keep/thing');
  assert.equal(seen.at(-1)!.body, '{"hello":"world"}');
  const key = await generateKey('ed25519');
  const url = `${node.url}/app/signed`;
  const body = new TextEncoder().encode('{"reading":42}');
  const headers = await signRequest(key, 'POST', url, body);
  const signed = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
  assert.equal(signed.status, 200);
  assert.equal(seen.at(-1)!.body, '{"reading":42}');
  assert.equal(seen.at(-1)!.headers['x-nexus-subject'], key.did);
  // A tampered body fails the digest check before anything is forwarded.
  const n = seen.length;
  const bad = await fetch(url, { method: 'POST', headers: { ...(await signRequest(key, 'POST', url, body)), 'content-type': 'application/json' }, body: '{"reading":43}' });
  assert.equal(bad.status, 401);
  assert.equal(seen.length, n);
});

test('responses stream through', async () => {
  const res = await fetch(`${node.url}/app/stream`, { headers: { 'x-nexus-dev-identity': 'alice' } });
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), 'chunk 0\n', 'the first chunk arrives before the upstream finished');
  releaseStream();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  assert.equal(rest, 'chunk 1\n');
});

test('upstream down → 502, upstream slow → 504, as problem+json', async () => {
  const down = await fetch(`${node.url}/down/x`, { headers: { 'x-nexus-dev-identity': 'alice' } });
  assert.equal(down.status, 502);
  assert.equal((await down.json()).code, 'UPSTREAM_UNAVAILABLE');
  const slow = await fetch(`${node.url}/app/slow`, { headers: { 'x-nexus-dev-identity': 'alice' } });
  assert.equal(slow.status, 504);
  assert.equal((await slow.json()).code, 'UPSTREAM_TIMEOUT');
});
