/**
 * sr25519 (@polkadot/wasm-crypto, ~22 MB resident) is loaded only when a
 * did:peaq key is first used. This file runs in its own process, so the
 * module state starts empty; the key and the signed request come from a
 * child `nexus` process, so this process first meets sr25519 in the Sentry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sr25519Loaded } from '../src/adapters/identity/keys.ts';
import { startTestNode } from './support/node.ts';
import { runCli } from './support/spawn.ts';

test('a node without did:peaq devices does not load sr25519; the first peaq-signed event loads it and books', async () => {
  const node = await startTestNode({ dev: false });
  try {
    assert.equal(sr25519Loaded(), false, 'loaded at start without any did:peaq device');
    const keyFile = join(node.data.dir, 'peaq.key');
    const gen = await runCli(['keygen', '--type', 'sr25519', '--out', keyFile]);
    assert.equal(gen.code, 0, gen.stderr);
    const did = JSON.parse(readFileSync(keyFile, 'utf8')).did as string;
    assert.match(did, /^did:peaq:/);
    const token = readFileSync(node.data.tokenFile, 'utf8').trim();
    const enrol = await fetch(`${node.adminUrl}/v1/admin/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ did }) });
    assert.equal(enrol.status, 201);
    assert.equal(sr25519Loaded(), false, 'loaded by enrolment alone');

    const sent = await runCli(['send', '--key', keyFile, '--amount', '250', '--url', node.url]);
    assert.equal(sent.code, 0, sent.stderr);
    const receipt = JSON.parse(sent.stdout);
    assert.equal(receipt.subject, did);
    assert.deepEqual(receipt.split, { creator: '150', pool: '75', fee: '25' });
    assert.equal(sr25519Loaded(), true);
    assert.equal(node.vault.size, 1);
  } finally {
    await node.cleanup();
  }
});
