import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { startTestNode, devPost, devGet, checkpointNow, type TestNode } from './support/node.ts';
import { metricValue } from '../src/telemetry/metrics.ts';
import { API_SECURE_HEADERS } from '../src/server/secure-headers.ts';

let node: TestNode;
before(async () => {
  // One node serves every test here; the per-IP limit (200/s by default) is
  // tested on its own node (sentry-methods), not left to how fast these run.
  node = await startTestNode({ configure: (c) => { c.limits.rate_per_ip = 1_000_000; } });
});
after(async () => {
  await node.cleanup();
});

async function json(res: Response) {
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() as Record<string, any> };
}

/** Runs fn and asserts that the ledger did not change. */
async function unchanged<T>(fn: () => Promise<T>): Promise<T> {
  const size = node.vault.size;
  const totals = node.vault.totals;
  const out = await fn();
  assert.equal(node.vault.size, size, 'nothing was written');
  assert.deepEqual(node.vault.totals, totals);
  return out;
}

test('a single event is booked durably: 201 with the receipt of SPEC §4', async () => {
  const r = await json(await devPost(`${node.url}/v1/events`, { amount: '1234', ref: 'one' }));
  assert.equal(r.status, 201);
  assert.match(r.type, /^application\/json/);
  assert.deepEqual(Object.keys(r.body).sort(), ['amount', 'beneficiary', 'checkpointed', 'leaf', 'ref', 'seq', 'split', 'subject', 'ts']);
  assert.equal(r.body.checkpointed, false);
  assert.equal(r.body.subject, 'dev:alice');
  assert.equal(r.body.beneficiary, 'dev:alice');
  assert.deepEqual(r.body.split, { creator: '740', pool: '370', fee: '124' });
  assert.match(r.body.leaf, /^[0-9a-f]{64}$/);
  const stored = node.vault.entry(r.body.seq)!;
  assert.equal(stored.entry.amount, 1234n);
});

const BAD_BODIES: Array<[string, unknown, number, string]> = [
  ['not JSON', '{"amount":', 400, 'MALFORMED_JSON'],
  ['an array', '[]', 400, 'BODY_INVALID'],
  ['a string', '"100"', 400, 'BODY_INVALID'],
  ['null', 'null', 400, 'BODY_INVALID'],
  ['no amount', {}, 400, 'AMOUNT_INVALID'],
  ['zero', { amount: '0' }, 400, 'AMOUNT_INVALID'],
  ['negative', { amount: '-5' }, 400, 'AMOUNT_INVALID'],
  ['a float', { amount: 1.5 }, 400, 'AMOUNT_INVALID'],
  ['a decimal string', { amount: '1.50' }, 400, 'AMOUNT_INVALID'],
  ['2^64', { amount: '18446744073709551616' }, 400, 'AMOUNT_INVALID'],
  ['an unsafe JSON integer', '{"amount": 9007199254740993}', 400, 'AMOUNT_INVALID'],
  ['leading zeros', { amount: '007' }, 400, 'AMOUNT_INVALID'],
  ['amount as bool', { amount: true }, 400, 'AMOUNT_INVALID'],
  ['unknown field', { amount: '1', memo: 'x' }, 400, 'UNKNOWN_FIELD'],
  ['__proto__ field', '{"amount":"1","__proto__":{"x":1}}', 400, 'UNKNOWN_FIELD'],
  ['empty beneficiary', { amount: '1', beneficiary: '' }, 400, 'BENEFICIARY_INVALID'],
  ['beneficiary with a newline', { amount: '1', beneficiary: 'a\nb' }, 400, 'BENEFICIARY_INVALID'],
  ['numeric beneficiary', { amount: '1', beneficiary: 5 }, 400, 'BENEFICIARY_INVALID'],
  ['long beneficiary', { amount: '1', beneficiary: 'x'.repeat(257) }, 400, 'BENEFICIARY_INVALID'],
  ['ref with a space', { amount: '1', ref: 'a b' }, 400, 'REF_INVALID'],
  ['long ref', { amount: '1', ref: 'r'.repeat(129) }, 400, 'REF_INVALID'],
  ['numeric ref', { amount: '1', ref: 7 }, 400, 'REF_INVALID'],
  ['empty batch', { events: [] }, 400, 'BATCH_INVALID'],
  ['batch not an array', { events: {} }, 400, 'BATCH_INVALID'],
  ['batch with an extra field', { events: [{ amount: '1' }], amount: '1' }, 400, 'UNKNOWN_FIELD'],
  ['batch with one bad event', { events: [{ amount: '1' }, { amount: '0' }] }, 400, 'AMOUNT_INVALID'],
  ['batch with a duplicate ref', { events: [{ amount: '1', ref: 'd' }, { amount: '2', ref: 'd' }] }, 400, 'DUPLICATE_REF'],
  ['a batch over 16 KiB', { events: Array.from({ length: 1001 }, () => ({ amount: '1000000' })) }, 413, 'BODY_TOO_LARGE'],
];

for (const [name, body, status, code] of BAD_BODIES) {
  test(`bad input: ${name} → ${status} ${code}, nothing written`, async () => {
    const r = await unchanged(async () => json(await devPost(`${node.url}/v1/events`, body)));
    assert.equal(r.status, status);
    assert.equal(r.type, 'application/problem+json');
    assert.equal(r.body.code, code);
    assert.equal(r.body.status, status);
    assert.ok(r.body.title && r.body.type);
  });
}

test('bad input: a batch of 1001 tiny events under the size limit is BATCH_INVALID', async () => {
  const events = Array.from({ length: 1001 }, () => ({ amount: 1 }));
  const big = await startTestNode({ configure: (c) => { c.limits.body_bytes = 65536; } });
  try {
    const r = await json(await devPost(`${big.url}/v1/events`, { events }));
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'BATCH_INVALID');
    assert.equal(big.vault.size, 0);
    const ok = await json(await devPost(`${big.url}/v1/events`, { events: events.slice(1) }));
    assert.equal(ok.status, 201);
    assert.equal(ok.body.receipts.length, 1000);
  } finally {
    await big.cleanup();
  }
});

test('bad input: wrong content type → 415, oversized body → 413, invalid UTF-8 → 400', async () => {
  await unchanged(async () => {
    const r = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-nexus-dev-identity': 'alice' }, body: '{"amount":"1"}' });
    assert.equal(r.status, 415);
    assert.equal((await r.json()).code, 'UNSUPPORTED_MEDIA_TYPE');
    const noType = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'x-nexus-dev-identity': 'alice' }, body: '{"amount":"1"}' });
    assert.equal(noType.status, 415);
    const big = await devPost(`${node.url}/v1/events`, { amount: '1', ref: 'x'.repeat(20000) });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).code, 'BODY_TOO_LARGE');
    const utf = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': 'alice' }, body: new Uint8Array([0x7b, 0xff, 0x7d]) });
    assert.equal(utf.status, 400);
    assert.equal((await utf.json()).code, 'MALFORMED_JSON');
  });
});

test('unauthenticated and malformed identities are rejected before any work', async () => {
  await unchanged(async () => {
    const none = await json(await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":"1"}' }));
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'UNAUTHENTICATED');
    const bad = await json(await devPost(`${node.url}/v1/events`, { amount: '1' }, 'has space'));
    assert.equal(bad.status, 401);
    assert.equal(bad.body.code, 'DEV_IDENTITY_INVALID');
    const read = await fetch(`${node.url}/v1/summary`);
    assert.equal(read.status, 401);
  });
});

/** A receipt without `checkpointed`, which may turn true between a booking and its retry. */
const sameReceipt = (r: Record<string, any>) => {
  const { checkpointed: _covered, ...rest } = r;
  return rest;
};

test('idempotent retries: ref or Idempotency-Key returns the first receipt with 200', async () => {
  const first = await json(await devPost(`${node.url}/v1/events`, { amount: '500', ref: 'retry-1' }));
  assert.equal(first.status, 201);
  const again = await unchanged(async () => json(await devPost(`${node.url}/v1/events`, { amount: '500', ref: 'retry-1' })));
  assert.equal(again.status, 200);
  assert.deepEqual(sameReceipt(again.body), sameReceipt(first.body));
  const conflict = await unchanged(async () => json(await devPost(`${node.url}/v1/events`, { amount: '501', ref: 'retry-1' })));
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body.code, 'REF_CONFLICT');
  const k1 = await json(await devPost(`${node.url}/v1/events`, { amount: '5' }, 'alice', { 'idempotency-key': 'key-1' }));
  assert.equal(k1.status, 201);
  assert.equal(k1.body.ref, 'key-1');
  const k2 = await unchanged(async () => json(await devPost(`${node.url}/v1/events`, { amount: '5' }, 'alice', { 'idempotency-key': 'key-1' })));
  assert.equal(k2.status, 200);
  assert.equal(k2.body.seq, k1.body.seq);
  const mismatch = await unchanged(async () => json(await devPost(`${node.url}/v1/events`, { amount: '5', ref: 'other' }, 'alice', { 'idempotency-key': 'key-2' })));
  assert.equal(mismatch.body.code, 'IDEMPOTENCY_KEY_INVALID');
  // A batch retried whole: all replayed, 200.
  const batch = { events: [{ amount: '1', ref: 'b1' }, { amount: '2', ref: 'b2' }] };
  const b1 = await json(await devPost(`${node.url}/v1/events`, batch));
  assert.equal(b1.status, 201);
  const b2 = await unchanged(async () => json(await devPost(`${node.url}/v1/events`, batch)));
  assert.equal(b2.status, 200);
  assert.deepEqual(b2.body.receipts.map(sameReceipt), b1.body.receipts.map(sameReceipt));
});

test('concurrent writers: 300 requests from 3 identities, every one booked exactly once', async () => {
  const before = node.vault.size;
  const responses = await Promise.all(Array.from({ length: 300 }, (_, i) =>
    devPost(`${node.url}/v1/events`, { amount: String(i + 1), ref: `c-${i}` }, `w${i % 3}`).then(json)));
  assert.deepEqual(responses.filter((r) => r.status !== 201), []);
  const seqs = new Set(responses.map((r) => r.body.seq));
  assert.equal(seqs.size, 300);
  assert.equal(node.vault.size, before + 300);
  for (const r of responses) assert.equal(node.vault.entry(r.body.seq)!.entry.ref, r.body.ref);
});

test('reads: event by seq, own events only, cursor pagination newest first, accounts, summary', async () => {
  const mine = await json(await devPost(`${node.url}/v1/events`, { events: [{ amount: '10' }, { amount: '20', beneficiary: 'dev:carol' }] }, 'bob'));
  const [s0, s1] = mine.body.receipts.map((r: any) => r.seq);
  const one = await json(await devGet(`${node.url}/v1/events/${s1}`, 'bob'));
  assert.equal(one.status, 200);
  assert.equal(one.body.amount, '20');
  assert.equal(JSON.parse(one.body.entry).seq, s1);
  // carol is the beneficiary: she may see it; dave may not (404, no existence leak).
  assert.equal((await devGet(`${node.url}/v1/events/${s1}`, 'carol')).status, 200);
  assert.equal((await json(await devGet(`${node.url}/v1/events/${s0}`, 'dave'))).body.code, 'NOT_FOUND');
  assert.equal((await json(await devGet(`${node.url}/v1/events/abc`, 'bob'))).body.code, 'SEQ_INVALID');
  assert.equal((await devGet(`${node.url}/v1/events/999999`, 'bob')).status, 404);

  for (let i = 0; i < 5; i++) await devPost(`${node.url}/v1/events`, { amount: String(100 + i) }, 'pager');
  const seen: number[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const page: any = await json(await devGet(`${node.url}/v1/events?limit=2${cursor ? `&cursor=${cursor}` : ''}`, 'pager'));
    assert.equal(page.status, 200);
    seen.push(...page.body.events.map((e: any) => e.seq));
    cursor = page.body.next;
  }
  assert.equal(seen.length, 5);
  assert.deepEqual(seen, [...seen].sort((a, b) => b - a));
  assert.equal((await json(await devGet(`${node.url}/v1/events?subject=dev:bob`, 'pager'))).body.code, 'FORBIDDEN');
  for (const q of ['limit=0', 'limit=501', 'limit=x', 'cursor=-1', 'cursor=1.5']) {
    assert.equal((await json(await devGet(`${node.url}/v1/events?${q}`, 'pager'))).body.code, 'QUERY_INVALID', q);
  }
  const acct = await json(await devGet(`${node.url}/v1/accounts/dev:carol`, 'carol'));
  assert.deepEqual(acct.body, { subject: 'dev:carol', credited: '12', events: 1 });
  assert.equal((await devGet(`${node.url}/v1/accounts/dev:carol`, 'bob')).status, 403);
  const sum = await json(await devGet(`${node.url}/v1/summary`, 'bob'));
  assert.equal(sum.body.entries, node.vault.size);
  const t = sum.body.totals;
  assert.equal(BigInt(t.creator) + BigInt(t.pool) + BigInt(t.fee), BigInt(t.amount));
});

test('every answer carries hono secureHeaders\' headers, booked events (their fast path) as much as problems and public routes', async () => {
  // The model: the library's middleware with the node's options on a bare app.
  const model = new Hono().use(secureHeaders(API_SECURE_HEADERS)).get('/', (c) => c.text('x'));
  const expected = [...(await model.request('/')).headers].filter(([k]) => k !== 'content-type' && k !== 'content-length');
  assert.ok(expected.length >= 10, `the library sets its headers (${expected.length})`);
  const answers: Array<[string, Response]> = [
    ['a booked event', await devPost(`${node.url}/v1/events`, { amount: '7', ref: 'secure-1' })],
    ['a replayed event', await devPost(`${node.url}/v1/events`, { amount: '7', ref: 'secure-1' })],
    ['a booked batch', await devPost(`${node.url}/v1/events`, { events: [{ amount: '1', ref: 'secure-2' }, { amount: '2', ref: 'secure-3' }] })],
    ['a conflict', await devPost(`${node.url}/v1/events`, { amount: '8', ref: 'secure-1' })],
    ['a bad body', await devPost(`${node.url}/v1/events`, { amount: '0' })],
    ['no identity', await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":"1"}' })],
    ['a public route', await fetch(`${node.url}/v1/node`)],
    ['no route', await fetch(`${node.url}/nope`)],
  ];
  for (const [what, res] of answers) {
    await res.arrayBuffer();
    for (const [k, v] of expected) assert.equal(res.headers.get(k), v, `${what} (${res.status}): ${k}`);
    assert.equal(res.headers.get('x-powered-by'), null, what);
  }
  assert.deepEqual(answers.slice(0, 3).map(([, r]) => r.status), [201, 200, 201]);
});

test('public routes, 404 and 405 are problem+json too', async () => {
  assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
  const ready = await json(await fetch(`${node.url}/readyz`));
  assert.deepEqual(ready.body, { status: 'ready', checks: { vault: true, wasm: true } });
  const info = await json(await fetch(`${node.url}/v1/node`));
  assert.equal(info.body.policy, '6000/3000/1000');
  assert.equal(Buffer.from(info.body.publicKey, 'base64').length, 32);
  const nf = await json(await fetch(`${node.url}/nope`));
  assert.equal(nf.status, 404);
  assert.equal(nf.type, 'application/problem+json');
  const na = await json(await fetch(`${node.url}/v1/summary`, { method: 'DELETE', headers: { 'x-nexus-dev-identity': 'alice' } }));
  assert.equal(na.status, 405);
  assert.equal(na.body.code, 'METHOD_NOT_ALLOWED');
});

test('fuzz: arbitrary bodies and headers never cause a 5xx, and only valid ones write', async () => {
  await fc.assert(fc.asyncProperty(
    fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.record({ amount: fc.oneof(fc.string(), fc.integer(), fc.double()), ref: fc.option(fc.string()) }).map((v) => JSON.stringify(v))),
    fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', ''),
    async (body, type) => {
      const size = node.vault.size;
      const res = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { ...(type ? { 'content-type': type } : {}), 'x-nexus-dev-identity': 'fuzz' }, body });
      assert.ok(res.status < 500, `status ${res.status} for ${body}`);
      const text = await res.text();
      if (res.status >= 400) {
        assert.equal(res.headers.get('content-type'), 'application/problem+json');
        assert.equal(node.vault.size, size);
      } else {
        assert.ok(node.vault.size >= size, text);
      }
    },
  ), { numRuns: 400 });
});

test('POST /v1/admin/checkpoint cuts a checkpoint over every event booked so far, for the admin token only', async () => {
  const booked = await json(await devPost(`${node.url}/v1/events`, { amount: '5', ref: 'cut-me' }, 'cutter'));
  const seq = booked.body.seq as number;
  const url = `${node.adminUrl}/v1/admin/checkpoint`;
  assert.equal((await fetch(url, { method: 'POST' })).status, 401);
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${readFileSync(node.data.tokenFile, 'utf8').trim()}` } });
  assert.equal(res.status, 200);
  const view = await res.json() as { size: number; root: string };
  assert.ok(view.size > seq, `checkpoint ${view.size} covers event ${seq}`);
  const latest = node.log.latest()!;
  assert.deepEqual(view, { size: latest.size, root: Buffer.from(latest.root).toString('hex'), ts: latest.ts });
});

test('log routes: checkpoint (text/plain, public), consistency, proof bundles for own events only', async () => {
  const booked = await json(await devPost(`${node.url}/v1/events`, { amount: '777', ref: 'proof-me' }, 'prover'));
  const seq = booked.body.seq as number;
  const early = await devGet(`${node.url}/v1/events/${seq}/proof`, 'prover');
  if (early.status === 409) {
    assert.equal((await early.json()).code, 'NOT_CHECKPOINTED');
    assert.equal(early.headers.get('retry-after'), '1');
  }
  await checkpointNow(node);
  const cp = await fetch(`${node.url}/v1/checkpoint`);
  assert.equal(cp.status, 200);
  assert.match(cp.headers.get('content-type')!, /^text\/plain/);
  const note = await cp.text();
  const { verifyNote, verifyProofBundle, verifyConsistency } = await import('../src/log/verify.ts');
  const info = await (await fetch(`${node.url}/v1/node`)).json();
  assert.ok(verifyNote(note, info.keyName, new Uint8Array(Buffer.from(info.publicKey, 'base64'))));
  const bundle = await json(await devGet(`${node.url}/v1/events/${seq}/proof`, 'prover'));
  assert.equal(bundle.status, 200);
  assert.deepEqual(Object.keys(bundle.body).sort(), ['anchors', 'auditPath', 'checkpoint', 'entry', 'index', 'keyName', 'leafHash', 'publicKey', 'treeSize']);
  assert.equal(verifyProofBundle(bundle.body as any).ok, true);
  assert.equal((await devGet(`${node.url}/v1/events/${seq}/proof`, 'someone-else')).status, 404);
  const view = await json(await devGet(`${node.url}/v1/events/${seq}`, 'prover'));
  assert.equal(view.body.checkpointed, true);
  const size = bundle.body.treeSize as number;
  const older = node.log.checkpoints(size, 1)[0]!;
  if (older.size > 0) {
    const cons = await json(await fetch(`${node.url}/v1/consistency?from=${older.size}&to=${size}`));
    assert.equal(cons.status, 200);
    assert.ok(verifyConsistency(older.size, size, older.root, node.log.checkpoint(size)!.root, cons.body.proof.map((h: string) => new Uint8Array(Buffer.from(h, 'hex')))));
    const pinned = await json(await devGet(`${node.url}/v1/events/0/proof?size=${older.size}`, 'alice'));
    assert.equal(pinned.body.treeSize, older.size);
  }
  for (const q of ['from=0&to=1', 'from=2&to=1', `from=1&to=${size + 1000}`, 'from=x&to=1']) {
    assert.equal((await json(await fetch(`${node.url}/v1/consistency?${q}`))).body.code, 'QUERY_INVALID', q);
  }
  assert.equal((await json(await devGet(`${node.url}/v1/events/${seq}/proof?size=999999`, 'prover'))).status, 404);
  const sum = await json(await devGet(`${node.url}/v1/summary`, 'prover'));
  assert.equal(sum.body.checkpoint.size, size);
});

test('a failed fsync: that write and every later one get 503 STORAGE_UNAVAILABLE, /readyz says not ready, reads still work', async (t) => {
  const own = await startTestNode();
  t.after(() => own.cleanup());
  const first = await json(await devPost(`${own.url}/v1/events`, { amount: '10', ref: 'before' }));
  assert.equal(first.status, 201);
  // EIO from fsync cannot be provoked on this machine's disk without root
  // tools (dm-flakey): the thread-pool fsync is replaced by one that fails.
  const realSync = own.vault.syncCommitted.bind(own.vault);
  own.vault.syncCommitted = () => realSync().then(() => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })));
  const failed = await json(await devPost(`${own.url}/v1/events`, { amount: '11', ref: 'during' }));
  assert.equal(failed.status, 503);
  assert.equal(failed.body.code, 'STORAGE_UNAVAILABLE');
  own.vault.syncCommitted = realSync;
  const after = await json(await devPost(`${own.url}/v1/events`, { amount: '12', ref: 'after' }));
  assert.equal(after.status, 503, 'the committer stays stopped: nothing after a failed fsync may be called durable');
  const ready = await fetch(`${own.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal((await json(await devGet(`${own.url}/v1/events/${first.body.seq}`))).status, 200);
  assert.ok(own.logs.some((l) => l.includes('"event":"vault_sync_failed"')), 'the operator is told why');
});

test('commit wait: a write waits for one whose body is still arriving and they share a commit; one rejected on its way releases it', async (t) => {
  const own = await startTestNode({ configure: (c) => (c.vault.commit_wait_ms = 5_000) });
  t.after(() => own.cleanup());
  const commits = async () => metricValue(await (await fetch(`${own.adminUrl}/metrics`, { headers: { authorization: `Bearer ${readFileSync(own.data.tokenFile, 'utf8').trim()}` } })).text(), 'nexus_commit_group_events_count');
  /** A POST whose headers go now and whose body goes only when `send` is called. */
  const slowPost = (name: string) => {
    const req = httpRequest(`${own.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': name, 'content-length': '14' } });
    req.flushHeaders();
    const answered = new Promise<number>((resolve, reject) => req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); }).on('error', reject));
    return { send: (body: string) => req.end(body), answered };
  };
  const before = await commits();
  const slow = slowPost('slow');
  await new Promise((r) => setTimeout(r, 100)); // its headers are in: it is on its way
  let fastDone = false;
  const fast = devPost(`${own.url}/v1/events`, { amount: '1' }, 'fast').then((r) => ((fastDone = true), r.status));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(fastDone, false, 'the fast write waits for the slow one');
  slow.send('{"amount":"2"}');
  assert.deepEqual([await fast, await slow.answered], [201, 201]);
  assert.equal(await commits(), before + 1, 'one commit for both');

  const bad = slowPost('bad');
  await new Promise((r) => setTimeout(r, 100));
  const started = performance.now();
  const next = devPost(`${own.url}/v1/events`, { amount: '3' }, 'next').then((r) => r.status);
  await new Promise((r) => setTimeout(r, 300));
  bad.send('{"amount":"x"}');
  assert.equal(await bad.answered, 400);
  assert.equal(await next, 201);
  assert.ok(performance.now() - started < 4_000, 'released when the slow one was rejected, not after commit_wait_ms');
});
