import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import fc from 'fast-check';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { loadVectors } from './support/vectors.ts';
import { startTestNode, type TestNode } from './support/node.ts';
import { parseSignatureHeaders, parseSignatureHeadersGeneral, canonicalSignature, signatureBase, contentDigest, contentDigestMember, serializeSignatureParams, signatureHeaders } from '../src/adapters/identity/rfc9421.ts';
import { parseDictionary, serializeDictionary } from 'structured-headers';
import { verifyEd25519, recoverAddress, recoverKeccakSigner, ss58Decode, ss58Encode, loadSr25519, verifySr25519, generateKey, signWithKey, parseDid, ed25519Did, ethAddress, keyFromSecret, type KeyFile } from '../src/adapters/identity/keys.ts';
import { signRequest } from '../src/cli/client.ts';
import { sha256 } from '../src/runtime/crypto.ts';
import { secp256k1 } from '@noble/curves/secp256k1.js';

const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/^0x/, ''), 'hex'));
const enc = new TextEncoder();

// ----------------------------------------------------------------------------- official vectors

test('RFC 9421 B.2.6: the signature base is rebuilt byte for byte and the ed25519 signature verifies and re-signs', async () => {
  const v = loadVectors<any>('rfc9421-http-signatures.json');
  const key = v.cases.find((c) => c.type === 'key');
  const c = v.cases.find((x) => x.type === 'httpSignature');
  const headers = new Map<string, string>(c.request.headers.map(([k, val]: [string, string]) => [k.toLowerCase(), val]));
  const parsed = parseSignatureHeaders(c.signatureInput, c.signature);
  assert.deepEqual(parsed.components, c.coveredComponents);
  const base = signatureBase(parsed.components, parsed.paramsText, { method: c.request.method, url: c.request.targetUri, header: (n) => headers.get(n) });
  assert.equal(new TextDecoder().decode(base), c.signatureBase);
  assert.ok(await verifyEd25519(unhex(key.publicKeyHex), base, parsed.signature));
  const priv = createPrivateKey(key.privateKeyPem);
  assert.equal(Buffer.from(nodeSign(null, base, priv)).toString('hex'), c.signatureHex);
  // Serialising the same parameters gives the same Signature-Input and Signature.
  const out = signatureHeaders(c.label, parsed.components, parsed.params, parsed.signature);
  assert.equal(out['signature-input'], c.signatureInput);
  assert.equal(out.signature, c.signature);
  assert.equal(serializeSignatureParams(parsed.components, parsed.params), parsed.paramsText);
});

test('RFC 9530 Content-Digest vectors: sha-256 and sha-512 members', async () => {
  const v = loadVectors<any>('rfc9421-http-signatures.json');
  const { createHash } = await import('node:crypto');
  let n = 0;
  for (const c of v.cases.filter((x) => x.type === 'contentDigest' || x.type === 'digestValue')) {
    const body = unhex(c.bodyHex);
    const digest = new Uint8Array(createHash(c.algorithm === 'sha-256' ? 'sha256' : 'sha512').update(body).digest());
    if (c.fieldValue) {
      assert.equal(contentDigest(c.algorithm, digest), c.fieldValue);
      assert.deepEqual(contentDigestMember(c.fieldValue, c.algorithm), digest);
    } else {
      assert.equal(contentDigest(c.algorithm, digest), `${c.algorithm}=${c.byteSequence}`);
    }
    n++;
  }
  assert.ok(n >= 5);
  assert.equal(contentDigestMember('sha-256=not-bytes', 'sha-256'), undefined);
  assert.equal(contentDigestMember('garbage ;;', 'sha-256'), undefined);
});

test('Signature-Input / Signature / Content-Digest: the hand reading of the canonical shape equals the library\'s on generated and mutated fields', () => {
  const outcome = (f: () => unknown) => { try { return { ok: f() }; } catch (e) { return { error: (e as Error).message }; } };
  const libraryDigest = (f: string) => outcome(() => { const m = parseDictionary(f).get('sha-256'); return m && m[0] instanceof ArrayBuffer ? new Uint8Array(m[0]) : undefined; }).ok;
  // Component names and string parameters: the characters that matter to the grammar, escapes and upper case included.
  const text = fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...'ab@-_.:/ ();=,*9'), maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'ab@-_.:/ ();=,"\\*A9'), maxLength: 12 }) },
  );
  const key = fc.constantFrom('sig1', 'sig-b', 'a', '*x', 'created', 'nonce', 'keyid', 'alg', 'tag', 'expires', 'other');
  const value = fc.oneof(fc.integer({ min: -1e15 + 1, max: 1e15 - 1 }), text);
  // Fields as the library writes them, and near-canonical ones written out by hand: integers
  // with leading zeros, -0 or 16 digits, repeated keys, escapes, empty lists.
  const serialised = fc.record({
    label: key,
    components: fc.array(text, { maxLength: 4 }),
    params: fc.array(fc.tuple(key, value), { maxLength: 5 }),
  }).map(({ label, components, params }) => ({ label, input: serializeDictionary(new Map([[label, [components.map((c) => [c, new Map()]), new Map(params)]]]) as Parameters<typeof serializeDictionary>[0]) }));
  const integerText = fc.oneof(fc.integer({ min: -99999, max: 99999 }).map(String), fc.constantFrom('0', '-0', '007', '-01', '1234567890123456', '999999999999999'));
  const stringText = fc.oneof(text.map((t) => t.replace(/["\\]/g, '')), fc.constantFrom('a\\"b', 'a\\\\b', ''));
  const handWritten = fc.record({
    label: key,
    items: fc.array(stringText, { maxLength: 4 }),
    params: fc.array(fc.tuple(key, fc.oneof(integerText, stringText.map((t) => `"${t}"`))), { maxLength: 5 }),
  }).map(({ label, items, params }) => ({ label, input: `${label}=(${items.map((t) => `"${t}"`).join(' ')})${params.map(([k, v]) => `;${k}=${v}`).join('')}` }));
  const field = fc.tuple(fc.oneof(serialised, handWritten), fc.uint8Array({ maxLength: 70 }))
    .map(([{ label, input }, signature]) => ({ label, input, sig: contentDigest('sha-256', signature).replace('sha-256', label) }));
  // Edits of one character anywhere, from an alphabet that reaches every branch of the grammar.
  const edit = fc.tuple(fc.nat(), fc.constantFrom('', ' ', '"', ';', '=', '(', ')', ':', '0', '-', 'a', 'A', '\\', ',', '\t', '==', '\u00e9'), fc.constantFrom('insert', 'replace'));
  const mutate = (s: string, [at, ch, how]: [number, string, string]) => { const i = at % (s.length + 1); return s.slice(0, i) + ch + s.slice(how === 'insert' ? i : i + 1); };
  let canonical = 0;
  const edits = (n: number) => fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(edit, { minLength: 1, maxLength: n }) });
  // The label asked for: none (the only one), the field's own, or any.
  const asked = fc.oneof(fc.constant(undefined), fc.constant(true), key);
  fc.assert(fc.property(field, edits(2), edits(1), asked, ({ label: own, input, sig }, inputEdits, sigEdits, ask) => {
    const label = ask === true ? own : ask;
    const i = inputEdits.reduce(mutate, input);
    const s = sigEdits.reduce(mutate, sig);
    if (canonicalSignature(i, s, label)) canonical++;
    assert.deepEqual(outcome(() => parseSignatureHeaders(i, s, label)), outcome(() => parseSignatureHeadersGeneral(i, s, label)), `${i} | ${s} | ${label}`);
    // The same bytes, mutated alike, as a Content-Digest field.
    const d = s.replace(/^[^=]*=/, 'sha-256=');
    assert.deepEqual(contentDigestMember(d, 'sha-256'), libraryDigest(d), d);
  }), { numRuns: 5000 });
  // The hand reading really served (about one pair in five is canonical).
  assert.ok(canonical > 500, `${canonical} canonical of 5000`);
  // And what `nexus send` writes is read by hand.
  const h = signatureHeaders('sig1', ['@method', '@path', 'content-digest'], { created: 1796189510, nonce: 'Fw8wFU1DYzL0qZtiwFee9A', keyid: 'did:key:z6Mkpt2tb6sKxHtBbKXX3VGTeP2HKSjVTQcTeAUnxHJ5vNPd', alg: 'ed25519' }, new Uint8Array(64).fill(7));
  assert.ok(canonicalSignature(h['signature-input'], h.signature, undefined));
});

test('RFC 8032 vectors through the ed25519 verifier (did:key)', async () => {
  const v = loadVectors<any>('rfc8032-ed25519.json');
  for (const c of v.cases) {
    assert.equal(await verifyEd25519(unhex(c.publicKey), unhex(c.message), unhex(c.signature)), true, c.name);
    const flipped = unhex(c.signature);
    flipped[0]! ^= 1;
    assert.equal(await verifyEd25519(unhex(c.publicKey), unhex(c.message), flipped), false);
    assert.equal(parseDid(ed25519Did(unhex(c.publicKey))).kind, 'ed25519');
  }
});

test('SS58 vectors (32-byte keys) decode and re-encode; invalid addresses are refused', () => {
  const v = loadVectors<any>('ss58-sr25519.json');
  let checked = 0;
  for (const c of v.cases.filter((x) => x.type === 'ss58')) {
    const is32 = !c.publicKey || unhex(c.publicKey).length === 32;
    if (c.valid && !is32) continue; // DIDs carry 32-byte keys only
    if (!c.valid) {
      assert.throws(() => ss58Decode(c.address), Error, c.desc);
    } else {
      const d = ss58Decode(c.address);
      assert.equal(`0x${Buffer.from(d.publicKey).toString('hex')}`, c.publicKey, c.desc);
      assert.equal(d.format, c.ss58Format);
      assert.equal(ss58Encode(d.publicKey, d.format), c.address);
    }
    checked++;
  }
  assert.ok(checked >= 20, `checked ${checked}`);
});

test('sr25519 vectors (signing context "substrate") through the did:peaq verifier', async () => {
  await loadSr25519();
  const v = loadVectors<any>('ss58-sr25519.json');
  const cases = v.cases.filter((x) => x.type === 'sr25519Verify');
  assert.equal(cases.length, 7);
  for (const c of cases) {
    const pub = c.publicKey ? unhex(c.publicKey) : ss58Decode(c.address).publicKey;
    assert.equal(await verifySr25519(pub, unhex(c.messageHex), unhex(c.signature)), c.valid, c.desc);
  }
});

test('secp256k1 recovery vectors (did:io): addresses recovered, bad v refused', () => {
  const v = loadVectors<any>('secp256k1-recover.json');
  for (const c of v.cases.filter((x) => x.type === 'keccak256')) {
    assert.equal(Buffer.from(keccak_256(c.inputHex ? unhex(c.inputHex) : enc.encode(c.inputText))).toString('hex'), c.expected);
  }
  let recovered = 0;
  for (const c of v.cases.filter((x) => x.type === 'recover')) {
    const got = c.messageHashIs === 'keccak256'
      ? recoverKeccakSigner(enc.encode(c.messageText), unhex(c.signature))
      : recoverAddress(unhex(c.messageHash), unhex(c.signature));
    if (c.valid === false) assert.equal(got, undefined, c.desc);
    else {
      assert.equal(got, c.expectedAddress.toLowerCase(), c.desc);
      recovered++;
    }
  }
  assert.ok(recovered >= 6);
  for (const c of v.cases.filter((x) => x.type === 'privateKeyToAddress')) {
    assert.equal(ethAddress(secp256k1.getPublicKey(unhex(c.privateKey), false)), c.expectedAddress);
  }
});

test('key round trips: sign and verify for every key type, any flipped byte fails', async () => {
  for (const type of ['ed25519', 'sr25519', 'secp256k1'] as const) {
    const key = await generateKey(type);
    assert.deepEqual(await keyFromSecret(type, key.secret), key);
    const msg = enc.encode(`message for ${type}`);
    const sig = await signWithKey(key, msg);
    const did = parseDid(key.did);
    const { verifyDeviceSignature, algForKey } = await import('../src/adapters/identity/keys.ts');
    assert.ok(await verifyDeviceSignature(did, algForKey(type), msg, sig), type);
    const bad = sig.slice();
    bad[10]! ^= 0x40;
    assert.equal(await verifyDeviceSignature(did, algForKey(type), msg, bad), false, `${type} flipped`);
  }
});

// ----------------------------------------------------------------------------- over HTTP

let node: TestNode;
const keys: Record<string, KeyFile> = {};
before(async () => {
  node = await startTestNode({ dev: false });
  for (const type of ['ed25519', 'sr25519', 'secp256k1'] as const) {
    keys[type] = await generateKey(type);
    node.vault.addDevice(keys[type]!.did, type);
  }
  const res = await fetch(`${node.adminUrl}/v1/admin/devices`, { headers: { authorization: `Bearer ${(await import('node:fs')).readFileSync(node.data.tokenFile, 'utf8').trim()}` } });
  assert.equal(res.status, 200);
  // Enrol through the admin API so the running Sentry sees the devices.
  const token = (await import('node:fs')).readFileSync(node.data.tokenFile, 'utf8').trim();
  for (const k of Object.values(keys)) {
    const r = await fetch(`${node.adminUrl}/v1/admin/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ did: k.did }) });
    assert.ok(r.status === 200 || r.status === 201);
  }
});
after(async () => {
  await node.cleanup();
});

async function signedPost(key: KeyFile, body: unknown, tweak?: (h: Record<string, string>) => void, bodyText?: string) {
  const url = `${node.url}/v1/events`;
  const bytes = enc.encode(bodyText ?? JSON.stringify(body));
  const headers = await signRequest(key, 'POST', url, bytes);
  headers['content-type'] = 'application/json';
  tweak?.(headers);
  return fetch(url, { method: 'POST', headers, body: bytes });
}

async function expectRejected(res: Response, status: number, code: string) {
  const body = await res.json() as { code: string };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  assert.equal(body.code, code);
}

test('signed events are booked for every key type, with the DID as subject and the evidence stored', async () => {
  for (const [type, key] of Object.entries(keys)) {
    const res = await signedPost(key, { amount: '1000', ref: `rt-${type}` });
    const r = await res.json() as { subject: string; seq: number };
    assert.equal(res.status, 201, JSON.stringify(r));
    assert.equal(r.subject, key.did);
    const evidence = new TextDecoder().decode(node.vault.evidence(r.seq));
    assert.match(evidence, /^"@method": POST\n"@path": \/v1\/events\n"content-digest": sha-256=:/);
    assert.equal(node.vault.entry(r.seq)!.entry.evidence, Buffer.from(sha256(node.vault.evidence(r.seq)!)).toString('hex'));
  }
});

test('signed reads work and see only their own events', async () => {
  const url = `${node.url}/v1/events?limit=5`;
  const headers = await signRequest(keys.ed25519!, 'GET', url, new Uint8Array(0));
  const res = await fetch(url, { headers });
  assert.equal(res.status, 200);
  const page = await res.json() as { events: Array<{ subject: string }> };
  assert.ok(page.events.length >= 1);
  assert.ok(page.events.every((e) => e.subject === keys.ed25519!.did));
});

test('every rejection path has its own code, and none changes state', async () => {
  const k = keys.ed25519!;
  const unenrolled = await generateKey('ed25519');
  const size = node.vault.size;
  await expectRejected(await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":"1"}' }), 401, 'UNAUTHENTICATED');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h.signature = h.signature!.replace(/:(.)/, (_m, ch) => `:${ch === 'A' ? 'B' : 'A'}`); }), 401, 'SIGNATURE_INVALID');
  await expectRejected(await signedPost(unenrolled, { amount: '1' }), 403, 'DEVICE_NOT_ENROLLED');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['signature-input'] = h['signature-input']!.replace(k.did, 'did:web:example.com'); }), 401, 'KEYID_UNSUPPORTED');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['content-digest'] = contentDigest('sha-256', sha256(enc.encode('other'))); }), 401, 'DIGEST_MISMATCH');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { delete h['content-digest']; }), 401, 'DIGEST_MISSING');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['signature-input'] = h['signature-input']!.replace(/created=\d+/, `created=${Math.floor(Date.now() / 1000) - 301}`); }), 401, 'SIGNATURE_STALE');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['signature-input'] = h['signature-input']!.replace(' "content-digest"', ''); }), 401, 'SIGNATURE_COMPONENTS');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['signature-input'] = h['signature-input']!.replace('alg="ed25519"', 'alg="sr25519"'); }), 401, 'ALG_MISMATCH');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['signature-input'] = h['signature-input']!.replace('alg="ed25519"', 'alg="rsa-pss-sha512"'); }), 401, 'ALG_UNSUPPORTED');
  await expectRejected(await signedPost(k, { amount: '1' }, (h) => { h['signature-input'] = 'sig1=oops'; }), 401, 'SIGNATURE_MALFORMED');
  // A body changed after signing no longer matches its digest.
  const url = `${node.url}/v1/events`;
  const headers = await signRequest(k, 'POST', url, enc.encode('{"amount":"1"}'));
  await expectRejected(await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"amount":"9"}' }), 401, 'DIGEST_MISMATCH');
  // Signed for another path.
  const other = await signRequest(k, 'POST', `${node.url}/v1/other`, enc.encode('{"amount":"1"}'));
  await expectRejected(await fetch(url, { method: 'POST', headers: { ...other, 'content-type': 'application/json' }, body: '{"amount":"1"}' }), 401, 'SIGNATURE_INVALID');
  assert.equal(node.vault.size, size);
});

test('replay: the same signed request twice is refused, before and after a restart', async () => {
  const tmp = (await import('./support/node.ts')).tempDir();
  const first = await startTestNode({ dev: false, dir: tmp.dir, configure: (c) => { c.sentry.signatures.enrollment = 'open'; } });
  const url = `${first.url}/v1/events`;
  const body = enc.encode('{"amount":"42"}');
  const headers = { ...(await signRequest(keys.secp256k1!, 'POST', url, body)), 'content-type': 'application/json' };
  assert.equal((await fetch(url, { method: 'POST', headers, body })).status, 201);
  await expectRejected(await fetch(url, { method: 'POST', headers, body }), 401, 'REPLAY');
  const size = first.vault.size;
  await first.stop();
  // Restart on the same data: the nonce was made durable with the row.
  const second = await startTestNode({ dev: false, dir: tmp.dir, configure: (c) => { c.sentry.signatures.enrollment = 'open'; } });
  try {
    const url2 = `${second.url}/v1/events`;
    // The port changed, but the base covers only @method/@path/content-digest.
    await expectRejected(await fetch(url2, { method: 'POST', headers, body }), 401, 'REPLAY');
    assert.equal(second.vault.size, size);
  } finally {
    await second.cleanup();
    tmp.cleanup();
  }
});

test('open enrolment accepts any valid signature; dev identity is refused without --dev', async () => {
  const open = await startTestNode({ dev: false, configure: (c) => { c.sentry.signatures.enrollment = 'open'; } });
  try {
    const stranger = await generateKey('ed25519');
    const url = `${open.url}/v1/events`;
    const body = enc.encode('{"amount":"5"}');
    const res = await fetch(url, { method: 'POST', headers: { ...(await signRequest(stranger, 'POST', url, body)), 'content-type': 'application/json' }, body });
    assert.equal(res.status, 201);
    await expectRejected(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': 'alice' }, body }), 401, 'UNAUTHENTICATED');
  } finally {
    await open.cleanup();
  }
});

test('fuzz: thousands of malformed signature headers and bodies give only 4xx and never a row', async () => {
  const size = node.vault.size;
  // Real header values signed over a body the fuzzer never sends, so no
  // combination of them is a valid request (that one would rightly be booked).
  const valid = await signRequest(keys.ed25519!, 'POST', `${node.url}/v1/events`, enc.encode('{"amount":"2","ref":"never-sent"}'));
  const headerValue = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom(valid['signature-input']!, valid.signature!, valid['content-digest']!),
    fc.string({ maxLength: 200 }).map((s) => `sig1=("@method" "@path" "content-digest");created=${Math.floor(Date.now() / 1000)};keyid="${s}";alg="ed25519";nonce="${s}"`),
    fc.uint8Array({ maxLength: 64 }).map((b) => `sig1=:${Buffer.from(b).toString('base64')}:`),
  ).filter((s) => /^[\x20-\x7e]*$/.test(s));
  await fc.assert(fc.asyncProperty(
    fc.record({ 'signature-input': headerValue, signature: headerValue, 'content-digest': headerValue }, { requiredKeys: [] }),
    fc.oneof(fc.string(), fc.constant('{"amount":"1"}')),
    async (headers, body) => {
      const res = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' } as Record<string, string>, body });
      await res.arrayBuffer();
      assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
    },
  ), { numRuns: 2000 });
  assert.equal(node.vault.size, size);
});

test('admin API: bearer token required (constant-time compare), devices listed, added, removed', async () => {
  const token = (await import('node:fs')).readFileSync(node.data.tokenFile, 'utf8').trim();
  const auth = { authorization: `Bearer ${token}` };
  assert.equal((await fetch(`${node.adminUrl}/v1/admin/devices`)).status, 401);
  assert.equal((await fetch(`${node.adminUrl}/v1/admin/devices`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  const k = await generateKey('ed25519');
  const add = await fetch(`${node.adminUrl}/v1/admin/devices`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ did: k.did, label: 'sensor 7' }) });
  assert.equal(add.status, 201);
  assert.equal((await signedPost(k, { amount: '3' })).status, 201);
  const bad = await fetch(`${node.adminUrl}/v1/admin/devices`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ did: 'did:web:x' }) });
  assert.equal((await bad.json() as { code: string }).code, 'DID_INVALID');
  const list = await (await fetch(`${node.adminUrl}/v1/admin/devices`, { headers: auth })).json() as { devices: Array<{ did: string; label: string }> };
  assert.equal(list.devices.find((d) => d.did === k.did)?.label, 'sensor 7');
  assert.equal((await fetch(`${node.adminUrl}/v1/admin/devices/${encodeURIComponent(k.did)}`, { method: 'DELETE', headers: auth })).status, 204);
  await expectRejected(await signedPost(k, { amount: '3' }), 403, 'DEVICE_NOT_ENROLLED');
  assert.equal((await fetch(`${node.adminUrl}/v1/admin/devices/${encodeURIComponent(k.did)}`, { method: 'DELETE', headers: auth })).status, 404);
});
