/**
 * Multi-chain anchoring against real local EVM nodes (two anvil instances with
 * the chain ids of iotex-testnet and peaq-agung) and the file adapter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicClient, http, type Hex } from 'viem';
import { startAnvil, ANVIL_KEY, ANVIL_ADDRESS, type Anvil } from './support/anvil.ts';
import { startTestNode, devPost, tempDir, checkpointNow, type TestNode } from './support/node.ts';
import { runCli } from './support/spawn.ts';
import { dataDir, initDataDir } from '../src/config/datadir.ts';
import { anchorPayload, toHex } from '../src/adapters/anchor/adapter.ts';
import { verifyProofBundle } from '../src/log/verify.ts';

let iotex: Anvil;
let peaq: Anvil;
before(async () => {
  [iotex, peaq] = await Promise.all([startAnvil(4690), startAnvil(9990)]);
});
after(async () => {
  await Promise.all([iotex.stop(), peaq.stop()]);
});

/** A node whose nexus.toml (the file, so the CLI sees it too) anchors as given. */
function anchoredNode(dir: string, anchors: (keyFile: string) => Array<Record<string, unknown>>, key = ANVIL_KEY) {
  writeFileSync(join(dir, 'anchor.key'), `${key}\n`, { mode: 0o600 });
  initDataDir(dataDir(dir));
  const file = join(dir, 'nexus.toml');
  const toml = readFileSync(file, 'utf8').replace(/\[\[anchors\]\][^[]*/s, '').replace('interval_s = 60', 'interval_s = 1');
  const blocks = anchors('anchor.key').map((a) => `[[anchors]]\n${Object.entries(a).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`);
  writeFileSync(file, `${toml}\n${blocks.join('\n')}`);
  return startTestNode({ dir });
}

/** Ticks the anchorer until `done` holds (anvil mines at once, so this is quick). */
async function until(node: TestNode, done: () => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out; anchors: ${JSON.stringify(node.anchorer.rows())}`);
    await node.anchorer.tick();
    await new Promise((r) => setTimeout(r, 50));
  }
}

const states = (node: TestNode, size: number) => Object.fromEntries(node.anchorer.receipts(size).map((r) => [r.chain, r.state]));

test('a checkpoint is anchored on both chains and in the file; receipts are in proof bundles and re-read from the chain', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const node = await anchoredNode(tmp.dir, (key) => [
    { type: 'file', path: 'anchors.jsonl' },
    { type: 'evm', chain: 'iotex-testnet', rpc_url: iotex.url, key_file: key, confirmations: 1 },
    { type: 'evm', chain: 'peaq-agung', rpc_url: peaq.url, key_file: key, confirmations: 1 },
  ]);
  let stopped = false;
  t.after(async () => { if (!stopped) await node.stop(); });
  for (let i = 0; i < 5; i++) assert.equal((await devPost(`${node.url}/v1/events`, { amount: String(100 + i) })).status, 201);
  const cp = await checkpointNow(node);
  await until(node, () => Object.values(states(node, cp.size)).filter((s) => s === 'confirmed').length === 3);
  assert.deepEqual(states(node, cp.size), { 'eip155:4690': 'confirmed', 'eip155:9990': 'confirmed', file: 'confirmed' });

  const api = await (await fetch(`${node.url}/v1/anchors?size=${cp.size}`)).json() as { anchors: Array<{ chain: string; tx: string; block: number; confirmations: number; adapter: string }> };
  assert.equal(api.anchors.length, 3);
  const payload = toHex(anchorPayload({ size: cp.size, note: cp.note }));
  for (const [anvil, chain] of [[iotex, 'eip155:4690'], [peaq, 'eip155:9990']] as const) {
    const r = api.anchors.find((a) => a.chain === chain)!;
    assert.equal(r.adapter, 'evm');
    assert.ok(r.block >= 1 && r.confirmations >= 1);
    const client = createPublicClient({ transport: http(anvil.url) });
    const tx = await client.getTransaction({ hash: r.tx as Hex });
    assert.equal(tx.input, payload, 'the calldata is NXS1 ‖ SHA-256(body) ‖ size');
    assert.equal(tx.from.toLowerCase(), ANVIL_ADDRESS);
  }
  assert.equal(payload.length, 2 + 80);
  assert.ok(readFileSync(join(tmp.dir, 'anchors.jsonl'), 'utf8').includes(payload));

  const bundle = await (await fetch(`${node.adminUrl}/v1/admin/events/2/proof?size=${cp.size}`, { headers: { authorization: `Bearer ${readFileSync(node.data.tokenFile, 'utf8').trim()}` } })).json();
  assert.equal(bundle.anchors.length, 3);
  assert.ok(verifyProofBundle(bundle).ok);
  const summary = await (await fetch(`${node.url}/v1/summary`, { headers: { 'x-nexus-dev-identity': 'alice' } })).json();
  assert.equal(summary.anchors['eip155:4690'].state, 'confirmed');

  await node.stop();
  stopped = true;
  const v = await runCli(['verify', '--anchors', '--data', tmp.dir]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /OK: 3 anchor receipts re-read and matched/);
});

test('one chain down: ingest goes on, the other chain anchors, and the backlog anchors when it is back', async (t) => {
  const down = await startAnvil(9990);
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const node = await anchoredNode(tmp.dir, (key) => [
    { type: 'evm', chain: 'iotex-testnet', rpc_url: iotex.url, key_file: key },
    { type: 'evm', chain: 'peaq-agung', rpc_url: down.url, key_file: key },
  ]);
  t.after(() => node.stop());
  await down.stop();
  const sizes: number[] = [];
  for (let round = 0; round < 2; round++) {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) assert.equal((await devPost(`${node.url}/v1/events`, { amount: '5' })).status, 201);
    assert.ok(performance.now() - t0 < 2000, 'ingest is not slowed by a dead chain');
    sizes.push((await checkpointNow(node)).size);
    await new Promise((r) => setTimeout(r, 1050)); // the next interval, so the new checkpoint is queued too
    await until(node, () => states(node, sizes.at(-1)!)['eip155:4690'] === 'confirmed' && states(node, sizes.at(-1)!)['eip155:9990'] === 'failed');
  }
  const failed = node.anchorer.rows().find((r) => r.chain === 'eip155:9990')!;
  assert.match(failed.error!, /unreachable/);
  // The chain comes back on the same port; `anchor retry` makes the backlog due now.
  const back = await startAnvil(9990, { port: down.port });
  t.after(() => back.stop());
  assert.ok(node.anchorer.retryFailed() >= 2);
  await until(node, () => sizes.every((s) => states(node, s)['eip155:9990'] === 'confirmed'));
});

test('a node restarted with a transaction in flight follows that transaction, it does not send a second one', async (t) => {
  const slow = await startAnvil(4690, { noMining: true });
  t.after(() => slow.stop());
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const anchors = (key: string) => [{ type: 'evm', chain: 'iotex-testnet', rpc_url: slow.url, key_file: key }];
  let node = await anchoredNode(tmp.dir, anchors);
  await devPost(`${node.url}/v1/events`, { amount: '1' });
  const cp = await checkpointNow(node);
  await until(node, () => states(node, cp.size)['eip155:4690'] === 'submitted');
  const tx = node.anchorer.receipts(cp.size)[0]!.tx;
  await node.stop();
  node = await anchoredNode(tmp.dir, anchors);
  t.after(() => node.stop());
  await node.anchorer.tick();
  assert.equal(states(node, cp.size)['eip155:4690'], 'submitted', 'still pending after restart');
  await slow.rpc('evm_mine');
  await until(node, () => states(node, cp.size)['eip155:4690'] === 'confirmed');
  assert.equal(node.anchorer.receipts(cp.size)[0]!.tx, tx, 'the same transaction confirmed');
  assert.equal(Number(await slow.rpc('eth_getTransactionCount', [ANVIL_ADDRESS, 'latest'])), 1, 'exactly one transaction was sent');
});

test('a transaction stuck past stuck_after_s is replaced with the same nonce and a higher gas price', async (t) => {
  const slow = await startAnvil(9990, { noMining: true });
  t.after(() => slow.stop());
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const node = await anchoredNode(tmp.dir, (key) => [{ type: 'evm', chain: 'peaq-agung', rpc_url: slow.url, key_file: key, stuck_after_s: 1 }]);
  t.after(() => node.stop());
  await devPost(`${node.url}/v1/events`, { amount: '1' });
  const cp = await checkpointNow(node);
  await until(node, () => states(node, cp.size)['eip155:9990'] === 'submitted');
  const first = node.anchorer.rows()[0]!;
  await new Promise((r) => setTimeout(r, 1200));
  await until(node, () => node.anchorer.rows()[0]!.tx !== first.tx);
  const second = node.anchorer.rows()[0]!;
  assert.equal(second.nonce, first.nonce, 'the replacement reuses the nonce');
  const [a, b] = await Promise.all([slow.rpc('eth_getTransactionByHash', [first.tx]), slow.rpc('eth_getTransactionByHash', [second.tx])]);
  assert.ok(BigInt(b.gasPrice) > BigInt(a?.gasPrice ?? 0), 'with a higher gas price');
  await slow.rpc('evm_mine');
  await until(node, () => states(node, cp.size)['eip155:9990'] === 'confirmed');
  assert.equal(node.anchorer.rows()[0]!.tx, second.tx);
  assert.equal(Number(await slow.rpc('eth_getTransactionCount', [ANVIL_ADDRESS, 'latest'])), 1, 'one transaction mined for the checkpoint');
});

test('wrong chain id and an empty account fail with a clear error, and the node keeps booking', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const wrong = await anchoredNode(tmp.dir, (key) => [{ type: 'evm', chain: 'iotex-testnet', rpc_url: peaq.url, key_file: key }]);
  t.after(() => wrong.stop());
  await devPost(`${wrong.url}/v1/events`, { amount: '1' });
  const cp = await checkpointNow(wrong);
  await until(wrong, () => states(wrong, cp.size)['eip155:4690'] === 'failed');
  assert.match(wrong.anchorer.rows()[0]!.error!, /answers chain id 9990, not 4690/);
  assert.equal((await devPost(`${wrong.url}/v1/events`, { amount: '2' })).status, 201);

  const tmp2 = tempDir();
  t.after(tmp2.cleanup);
  const empty = await anchoredNode(tmp2.dir, (key) => [{ type: 'evm', chain: 'peaq-agung', rpc_url: peaq.url, key_file: key }], `0x${'11'.repeat(32)}`);
  t.after(() => empty.stop());
  await devPost(`${empty.url}/v1/events`, { amount: '1' });
  const cp2 = await checkpointNow(empty);
  await until(empty, () => states(empty, cp2.size)['eip155:9990'] === 'failed');
  assert.match(empty.anchorer.rows()[0]!.error!, /has no funds/);
});

test('anchor config errors stop the start (fail closed)', async () => {
  const { FailClosedError } = await import('../src/server/node.ts');
  const tmp = tempDir();
  try {
    await assert.rejects(startTestNode({ dir: tmp.dir, configure: (c) => { c.anchors = [{ type: 'evm', chain: 'iotex-testnet', rpc_url: iotex.url, key_file: 'missing.key' }]; } }), FailClosedError);
    await assert.rejects(startTestNode({ dir: tmp.dir, configure: (c) => { c.anchors = [{ type: 'evm', chain: 'moon', rpc_url: iotex.url, key_file: 'k' }]; } }), /unknown chain "moon"/);
  } finally {
    tmp.cleanup();
  }
});
