import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { loadVectors } from './support/vectors.ts';
import { startTestNode, devPost, type TestNode } from './support/node.ts';
import { initDataHash, telegramVerifier } from '../src/adapters/identity/telegram.ts';
import { clientAddress, parseCidr, cidrContains, parseIp } from '../src/sentry/ingress.ts';
import { RateLimiter } from '../src/sentry/rate-limit.ts';
import { SentryRejection } from '../src/sentry/identity.ts';

// ----------------------------------------------------------------------------- Cloudflare Access, JWKS from a real local server

let jwksServer: Server;
let jwksUrl = '';
let jwksUp = true;
let jwksHits = 0;
let keys: Array<{ kid: string; privateKey: CryptoKey; jwk: Record<string, unknown> }> = [];
const TEAM = 'https://acme.cloudflareaccess.com';
const AUD = 'a'.repeat(64);

async function newKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey: privateKey as CryptoKey, jwk };
}

async function token(claims: Record<string, unknown>, opts: { kid?: string; aud?: string; iss?: string; exp?: number; nbf?: number } = {}) {
  const k = keys.find((x) => x.kid === (opts.kid ?? keys[0]!.kid)) ?? (await newKey(opts.kid!));
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: k.kid }).setIssuedAt(now).setIssuer(opts.iss ?? TEAM).setAudience(opts.aud ?? AUD).setExpirationTime(opts.exp ?? now + 600);
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  return jwt.sign(k.privateKey);
}

let node: TestNode;
before(async () => {
  keys = [await newKey('k1')];
  jwksServer = createServer((req, res) => {
    jwksHits++;
    if (!jwksUp) {
      res.statusCode = 503;
      res.end('down');
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/cdn-cgi/access/certs`;
  node = await startTestNode({
    dev: false,
    configure: (c) => {
      c.sentry.signatures.enabled = false;
      c.sentry.cloudflare = { team_domain: TEAM, aud: AUD, jwks_url: jwksUrl };
      c.sentry.telegram = { bot_token: '5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8', max_age_s: 3600 };
    },
  });
});
after(async () => {
  await node.cleanup();
  jwksServer.close();
});

async function cfPost(jwt: string, body = '{"amount":"10"}') {
  return fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'cf-access-jwt-assertion': jwt }, body });
}

async function code(res: Response) {
  const b = await res.json() as { code?: string; subject?: string };
  return { status: res.status, code: b.code, subject: b.subject };
}

test('Cloudflare Access: a valid RS256 token books as cf:<email>; every bad token has its own code and writes nothing', async () => {
  const ok = await code(await cfPost(await token({ email: 'alice@example.com', sub: 'u1' })));
  assert.deepEqual(ok, { status: 201, code: undefined, subject: 'cf:alice@example.com' });
  const size = node.vault.size;
  assert.equal((await code(await cfPost(await token({ email: 'a@x' }, { aud: 'other' })))).code, 'JWT_AUDIENCE');
  assert.equal((await code(await cfPost(await token({ email: 'a@x' }, { iss: 'https://evil.cloudflareaccess.com' })))).code, 'JWT_ISSUER');
  assert.equal((await code(await cfPost(await token({ email: 'a@x' }, { exp: Math.floor(Date.now() / 1000) - 3600 })))).code, 'JWT_EXPIRED');
  assert.equal((await code(await cfPost(await token({ email: 'a@x' }, { nbf: Math.floor(Date.now() / 1000) + 3600 })))).code, 'JWT_NOT_YET_VALID');
  const good = await token({ email: 'a@x' });
  const [h, p, s] = good.split('.');
  assert.equal((await code(await cfPost(`${h}.${p}.${s!.slice(0, -4)}AAAA`))).code, 'JWT_SIGNATURE_INVALID');
  assert.equal((await code(await cfPost('not.a.jwt'))).code, 'JWT_INVALID');
  assert.equal(node.vault.size, size);
});

test('Cloudflare Access: an unknown kid refreshes the JWKS (key rotation); JWKS down rejects, never passes', async () => {
  const rotated = await newKey('k2');
  keys.push(rotated);
  // jose refetches at most once per cooldown (1 s here), so a flood of made-up kids cannot hammer the JWKS.
  await new Promise((r) => setTimeout(r, 1100));
  const before = jwksHits;
  const r = await code(await cfPost(await token({ email: 'rotated@example.com' }, { kid: 'k2' })));
  assert.equal(r.status, 201);
  assert.ok(jwksHits > before, 'the JWKS was fetched again for the new kid');
  jwksUp = false;
  try {
    const size = node.vault.size;
    const down = await code(await cfPost(await token({ email: 'a@x' }, { kid: 'k3-never-seen' })));
    assert.equal(down.status, 401);
    assert.ok(['JWKS_UNAVAILABLE', 'JWT_UNKNOWN_KEY'].includes(down.code!), down.code);
    assert.equal(node.vault.size, size);
  } finally {
    jwksUp = true;
  }
});

test('a fresh node whose JWKS is unreachable rejects every Access token (fail closed)', async () => {
  const dead = await startTestNode({ dev: false, configure: (c) => {
    c.sentry.signatures.enabled = false;
    c.sentry.cloudflare = { team_domain: TEAM, aud: AUD, jwks_url: 'http://127.0.0.1:9/certs' };
  } });
  try {
    const res = await fetch(`${dead.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'cf-access-jwt-assertion': await token({ email: 'a@x' }) }, body: '{"amount":"1"}' });
    assert.deepEqual(await code(res), { status: 401, code: 'JWKS_UNAVAILABLE', subject: undefined });
    assert.equal(dead.vault.size, 0);
  } finally {
    await dead.cleanup();
  }
});

// ----------------------------------------------------------------------------- Telegram

test('Telegram initData vectors (HMAC scheme): valid ones verify, tampered ones fail', () => {
  const v = loadVectors<any>('telegram-initdata.json');
  const hmac = v.cases.filter((c) => c.type === 'hmac');
  assert.ok(hmac.length >= 4);
  for (const c of hmac) {
    const verifier = telegramVerifier({ botToken: c.botToken, maxAgeS: 0 });
    const request = new Request('http://x/', { headers: { authorization: `tma ${c.initData}` } });
    const run = () => verifier.verify({ request, body: new Uint8Array(0), clientIp: '127.0.0.1', loopback: true });
    if (c.valid) {
      assert.equal(initDataHash(new URLSearchParams(c.initData), c.botToken), c.expectedHash ?? new URLSearchParams(c.initData).get('hash'));
      const id = run() as { subject: string };
      assert.match(id.subject, /^tg:\d+$/);
    } else {
      assert.throws(run, SentryRejection, c.desc);
    }
  }
});

test('Telegram over HTTP: fresh initData books as tg:<id>; stale or tampered initData is rejected', async () => {
  const botToken = '5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8';
  const make = (authDate: number, id = 42) => {
    const p = new URLSearchParams({ auth_date: String(authDate), query_id: 'Q', user: JSON.stringify({ id, first_name: 'T' }) });
    p.set('hash', initDataHash(p, botToken));
    return p.toString();
  };
  const post = (init: string) => fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `tma ${init}` }, body: '{"amount":"5"}' });
  assert.deepEqual(await code(await post(make(Math.floor(Date.now() / 1000)))), { status: 201, code: undefined, subject: 'tg:42' });
  assert.equal((await code(await post(make(Math.floor(Date.now() / 1000) - 7200)))).code, 'INITDATA_EXPIRED');
  assert.equal((await code(await post(make(Math.floor(Date.now() / 1000)).replace('%22id%22%3A42', '%22id%22%3A43')))).code, 'INITDATA_INVALID');
  // Two methods at once: exactly one identity or nothing.
  const both = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `tma ${make(Math.floor(Date.now() / 1000))}`, 'cf-access-jwt-assertion': await token({ email: 'a@x' }) }, body: '{"amount":"5"}' });
  assert.equal((await code(both)).code, 'IDENTITY_AMBIGUOUS');
});

test('half-configured methods stop the node at start', async () => {
  const { FailClosedError } = await import('../src/server/node.ts');
  await assert.rejects(startTestNode({ dev: false, configure: (c) => { c.sentry.cloudflare = { team_domain: TEAM }; } }), FailClosedError);
  await assert.rejects(startTestNode({ dev: false, configure: (c) => { c.sentry.telegram = { max_age_s: 5 }; } }), FailClosedError);
});

// ----------------------------------------------------------------------------- ingress, rate limits, legacy routes, telemetry

test('ingress: CIDRs, and which client address each mode believes', () => {
  assert.ok(cidrContains(parseCidr('10.0.0.0/8'), '10.1.2.3'));
  assert.ok(!cidrContains(parseCidr('10.0.0.0/8'), '11.1.2.3'));
  assert.ok(cidrContains(parseCidr('::1/128'), '::1'));
  assert.ok(cidrContains(parseCidr('2001:db8::/32'), '2001:db8:0:0:1::5'));
  assert.ok(cidrContains(parseCidr('127.0.0.0/8'), '::ffff:127.0.0.1'));
  assert.throws(() => parseCidr('10.0.0.0/33'));
  assert.throws(() => parseCidr('nonsense'));
  assert.equal(parseIp('1.2.3.256'), undefined);
  const h = new Headers({ 'x-forwarded-for': '203.0.113.9, 10.0.0.2', 'cf-connecting-ip': '198.51.100.7' });
  assert.equal(clientAddress({ mode: 'direct', trustedProxies: [] })('10.0.0.1', h), '10.0.0.1');
  assert.equal(clientAddress({ mode: 'cloudflare', trustedProxies: [] })('127.0.0.1', h), '198.51.100.7');
  assert.equal(clientAddress({ mode: 'cloudflare', trustedProxies: [] })('203.0.113.50', h), '203.0.113.50', 'Cf-Connecting-IP from a non-local peer is not believed');
  assert.equal(clientAddress({ mode: 'proxy', trustedProxies: ['10.0.0.0/8'] })('10.0.0.1', h), '203.0.113.9');
  assert.equal(clientAddress({ mode: 'proxy', trustedProxies: ['10.0.0.0/8'] })('192.0.2.1', h), '192.0.2.1', 'an untrusted peer cannot set X-Forwarded-For');
});

test('ingress: IPv4 is parsed as dotted quads of 0–255 without leading zeros, whatever the string (property)', () => {
  // The model: the regex-per-part parser this replaced for speed.
  const model = (a: string): bigint | undefined => {
    const parts = a.split('.');
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
    return parts.reduce((v, p) => (v << 8n) | BigInt(p), 0n);
  };
  const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9]{0,4}$/));
  const quads = fc.array(part, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('.'));
  const noise = fc.string({ unit: fc.constantFrom('0', '1', '2', '5', '9', '.', ':', 'a', ' ', '-'), maxLength: 24 });
  fc.assert(fc.property(fc.oneof(quads, noise), (a) => {
    const ip = parseIp(a);
    const v4 = model(a);
    if (v4 !== undefined) assert.deepEqual(ip, { v6: false, bits: v4 });
    else assert.ok(ip === undefined || ip.v6 || a.includes(':'), `${JSON.stringify(a)} is not an IPv4 address`);
  }), { numRuns: 3000 });
  assert.deepEqual(parseIp('255.255.255.255'), { v6: false, bits: 0xffffffffn });
  for (const bad of ['01.2.3.4', '1.2.3', '1.2.3.4.', '.1.2.3', '1..2.3', '1.2.3.256', '1.2.3.4 ', '']) assert.equal(parseIp(bad), undefined, bad);
});

test('rate limiter: burst of one second, then Retry-After', () => {
  const rl = new RateLimiter(3);
  const t = 1_000_000;
  assert.deepEqual([rl.take('a', t), rl.take('a', t), rl.take('a', t)], [0, 0, 0]);
  assert.ok(rl.take('a', t) >= 1);
  assert.equal(rl.take('b', t), 0);
  assert.equal(rl.take('a', t + 400), 0);
});

test('rate limits over HTTP: 429 with Retry-After, per identity and per IP, counted as rejections', async () => {
  const limited = await startTestNode({ configure: (c) => { c.limits.rate_per_identity = 5; c.limits.rate_per_ip = 1000; } });
  try {
    // Sent together, so the bucket cannot refill in between however slow the machine is.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => devPost(`${limited.url}/v1/events`, { amount: '1' }, 'busy').then((r) => r.status)));
    assert.ok(statuses.includes(429), String(statuses));
    // The bucket refills 5 tokens a second: on a slow machine one may be back
    // by now, so send until it is empty again (a few requests at most).
    let res = await devPost(`${limited.url}/v1/events`, { amount: '1' }, 'busy');
    for (let i = 0; i < 10 && res.status === 201; i++) res = await devPost(`${limited.url}/v1/events`, { amount: '1' }, 'busy');
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.equal((await res.json()).code, 'RATE_LIMITED');
    assert.equal((await devPost(`${limited.url}/v1/events`, { amount: '1' }, 'calm')).status, 201, 'another identity is not limited');
  } finally {
    await limited.cleanup();
  }
  const perIp = await startTestNode({ configure: (c) => { c.limits.rate_per_ip = 3; } });
  try {
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => devPost(`${perIp.url}/v1/events`, { amount: '1' }, `id${i}`).then((r) => r.status)));
    assert.ok(statuses.filter((s) => s === 429).length >= 4, String(statuses));
  } finally {
    await perIp.cleanup();
  }
});

test('legacy routes: execute_split converts 12.34 exactly, vault_summary and transactions behind the Sentry', async () => {
  const dev = await startTestNode();
  try {
    const r = await devPost(`${dev.url}/api/execute_split`, { amount: 12.34 }, 'legacy');
    const body = await r.json();
    assert.equal(r.status, 201);
    assert.equal(body.amount, '1234');
    assert.deepEqual(body.legacy, { amount: '12.34', creator: '7.40', pool: '3.70', fee: '1.24' });
    assert.equal((await devPost(`${dev.url}/api/execute_split`, { amount: 1.005 }, 'legacy')).status, 400);
    assert.equal((await devPost(`${dev.url}/api/execute_split`, { amount: 1, user_id: '999' }, 'legacy')).status, 400);
    const anon = await fetch(`${dev.url}/api/execute_split`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":1}' });
    assert.equal(anon.status, 401, 'no more shared user "999"');
    const sum = await (await fetch(`${dev.url}/api/vault_summary`, { headers: { 'x-nexus-dev-identity': 'legacy' } })).json();
    assert.equal(sum.totals.amount, '12.34');
    const tx = await (await fetch(`${dev.url}/api/transactions`, { headers: { 'x-nexus-dev-identity': 'legacy' } })).json();
    assert.equal(tx.transactions.length, 1);
    assert.equal((await fetch(`${dev.url}/api/vault_summary`)).status, 401);
    assert.equal(dev.vault.size, 1);
  } finally {
    await dev.cleanup();
  }
});

test('telemetry: every rejection is a JSON log line, a Prometheus counter by code, and a row in the admin table', async () => {
  const token = readFileSync(node.data.tokenFile, 'utf8').trim();
  await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":"1"}' });
  const table = await (await fetch(`${node.adminUrl}/v1/admin/rejections`, { headers: { authorization: `Bearer ${token}` } })).json();
  const row = table.rejections[0];
  assert.equal(row.code, 'UNAUTHENTICATED');
  assert.equal(row.route, 'POST /v1/events');
  assert.equal(row.clientIp, '127.0.0.1');
  assert.ok(row.time);
  const metrics = await (await fetch(`${node.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  assert.match(metrics, /nexus_sentry_rejections_total\{code="UNAUTHENTICATED"\} \d+/);
  assert.match(metrics, /nexus_sentry_rejections_total\{code="JWT_AUDIENCE"\} 1/);
  assert.match(metrics, /nexus_events_booked_total \d+/);
  for (const name of ['nexus_commit_duration_seconds_bucket', 'nexus_vault_fsync_duration_seconds_bucket', 'nexus_eventloop_active_seconds_total', 'nexus_commit_group_events_bucket', 'nexus_checkpoint_size', 'nexus_ledger_entries', 'nexus_process_resident_memory_bytes']) assert.ok(metrics.includes(name), name);
  assert.equal((await fetch(`${node.adminUrl}/metrics`)).status, 401);
  const line = node.logs.map((l) => JSON.parse(l)).find((l) => l.event === 'sentry_rejection' && l.code === 'JWT_EXPIRED');
  assert.ok(line && line.time && line.route && line.clientIp, 'a structured log line');
});
