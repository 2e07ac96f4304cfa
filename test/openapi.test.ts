import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import Ajv2020 from 'ajv/dist/2020.js';
import { startTestNode, type TestNode } from './support/node.ts';
import { EVENT_BODY_SCHEMA, SCHEMAS, rangePattern } from '../src/server/openapi.ts';
import { parseEventBody } from '../src/server/event-body.ts';
import { ProblemError } from '../src/server/problem.ts';

let node: TestNode;
before(async () => { node = await startTestNode(); });
after(async () => { await node.cleanup(); });

test('GET /openapi.json is OpenAPI 3.1 generated from the registered routes', async () => {
  const doc = await (await fetch(`${node.url}/openapi.json`)).json();
  assert.equal(doc.openapi, '3.1.0');
  for (const [path, method] of [['/v1/events', 'post'], ['/v1/events', 'get'], ['/v1/events/{seq}', 'get'], ['/v1/events/{seq}/proof', 'get'], ['/v1/checkpoint', 'get'], ['/v1/consistency', 'get'], ['/v1/anchors', 'get'], ['/v1/summary', 'get'], ['/v1/accounts/{subject}', 'get'], ['/v1/node', 'get'], ['/healthz', 'get'], ['/readyz', 'get'], ['/api/execute_split', 'post']] as Array<[string, string]>) {
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
  }
  assert.deepEqual(doc.paths['/v1/events'].post.security.length, 3);
  assert.equal(doc.paths['/v1/checkpoint'].get.security, undefined);
  const ids = Object.values(doc.paths).flatMap((p: any) => Object.values(p).map((o: any) => o.operationId));
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  // Every $ref resolves.
  const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[A-Za-z]+/g) ?? [];
  for (const r of refs) assert.ok(doc.components.schemas[r.split('/').at(-1)!], r);
});

test('GET /docs renders the reference from the same registry', async () => {
  const res = await fetch(`${node.url}/docs`);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /Nexus API/);
  assert.match(html, /\/v1\/events\/\{seq\}\/proof/);
  assert.match(res.headers.get('content-security-policy')!, /default-src 'none'/);
});

test('the documented POST /v1/events schema and the validator agree on random bodies', () => {
  const schema = JSON.parse(JSON.stringify({ ...EVENT_BODY_SCHEMA, $defs: SCHEMAS }).replaceAll('#/components/schemas/', '#/$defs/'));
  const ajv = new Ajv2020.default({ strict: false, allErrors: false });
  const validate = ajv.compile(schema);
  const amount = fc.oneof(fc.bigInt({ min: -5n, max: 2n ** 64n + 5n }).map(String), fc.integer(), fc.double(), fc.constantFrom('01', '1.0', '', ' 1', '18446744073709551615', '18446744073709551616'), fc.boolean());
  const text = fc.oneof(fc.string({ maxLength: 140 }), fc.constantFrom('a\nb', 'x'.repeat(257), 'ok-ref', ' '), fc.constant(null), fc.integer());
  const event = fc.record({ amount, beneficiary: text, ref: text, extra: fc.string() }, { requiredKeys: [] });
  const goodEvent = fc.record({
    amount: fc.bigInt({ min: 1n, max: 2n ** 64n - 1n }).map(String),
    beneficiary: fc.string({ minLength: 1, maxLength: 30 }),
    ref: fc.stringMatching(/^[!-~]{1,20}$/),
  }, { requiredKeys: ['amount'] });
  const body = fc.oneof(goodEvent, fc.record({ events: fc.array(goodEvent, { minLength: 1, maxLength: 4 }) }), event, fc.record({ events: fc.array(event, { maxLength: 4 }) }), fc.record({ events: fc.array(event, { maxLength: 2 }), amount }), fc.jsonValue());
  let accepted = 0;
  fc.assert(fc.property(body, (b) => {
    let ok = true;
    try {
      parseEventBody(JSON.parse(JSON.stringify(b)), 'subject', null);
    } catch (e) {
      if (!(e instanceof ProblemError)) throw e;
      // Unique refs within a batch is the one rule JSON Schema cannot say.
      if (e.code === 'DUPLICATE_REF') return;
      ok = false;
    }
    if (ok) accepted++;
    assert.equal(validate(JSON.parse(JSON.stringify(b))), ok, JSON.stringify(b));
  }), { numRuns: 3000 });
  assert.ok(accepted > 50, `only ${accepted} valid bodies generated`);
});

test('the amount range pattern is exact', () => {
  const re = new RegExp(rangePattern('18446744073709551615'));
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 66n }), (n) => {
    assert.equal(re.test(n.toString()), n >= 1n && n <= 2n ** 64n - 1n, n.toString());
  }), { numRuns: 5000 });
  for (const n of [1n, 9n, 10n, 2n ** 64n - 1n, 2n ** 64n, 18446744073709551609n, 18446744073709551620n, 10000000000000000000n, 99999999999999999999n]) {
    assert.equal(re.test(n.toString()), n >= 1n && n <= 2n ** 64n - 1n, n.toString());
  }
  assert.equal(re.test('01'), false);
});
