/**
 * Crash safety (SPEC §1, §10): a node under concurrent load is SIGKILLed at a
 * random moment, several times. After each kill the vault on disk must hold
 * every acknowledged (2xx) event unchanged, and clients that retry what was in
 * flight (same ref) must never book it twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Vault } from '../src/vault/vault.ts';
import { tempDir } from './support/node.ts';
import { startCli } from './support/spawn.ts';
import { join } from 'node:path';
import { dataDir, loadConfig, loadNodeKey } from '../src/config/datadir.ts';
import { TransparencyLog } from '../src/log/log.ts';
import { auditVault } from '../src/log/audit.ts';
import { nodeSigner } from '../src/server/node.ts';

interface Ack { seq: number; amount: string; leaf: string; ref: string }

const TRIALS = 4;
const WORKERS = 24;

test(`SIGKILL under load, ${TRIALS} trials: every acknowledged event survives, nothing doubles`, { timeout: 180_000 }, async (t) => {
  const tmp = tempDir('nexus-crash-');
  t.after(tmp.cleanup);
  const acked = new Map<string, Ack>();
  const inFlight = new Set<string>();
  let counter = 0;

  const send = async (port: number, ref: string, amount: string): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': `dev${ref.length % 5}` },
      body: JSON.stringify({ amount, ref }),
    });
    const body = await res.json() as Ack;
    assert.ok(res.status === 201 || res.status === 200, `status ${res.status}`);
    acked.set(ref, { seq: body.seq, amount: body.amount, leaf: body.leaf, ref });
    inFlight.delete(ref);
  };

  for (let trial = 0; trial < TRIALS; trial++) {
    const node = await startCli(['--data', tmp.dir, '--port', '0', '--admin-port', '0', '--dev']);
    // Retry what was in flight when the last node died: same ref, same amount.
    for (const ref of [...inFlight]) await send(node.port, ref, ref.split('-')[1]!);
    let stop = false;
    const workers = Array.from({ length: WORKERS }, async () => {
      while (!stop) {
        const n = ++counter;
        const ref = `r${n}-${n * 7 + 1}`;
        inFlight.add(ref);
        try {
          await send(node.port, ref, String(n * 7 + 1));
        } catch {
          return; // the node is gone; this ref stays in flight
        }
      }
    });
    // Kill at a random moment once the node is really booking (a cold start
    // under tsx can take a while to answer its first requests).
    const ackedBefore = acked.size;
    for (let waited = 0; acked.size === ackedBefore && waited < 30_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 1200)));
    node.proc.kill('SIGKILL');
    await node.exited;
    stop = true;
    await Promise.all(workers);

    // The files, as the dead node left them.
    const vault = await Vault.open(join(tmp.dir, 'vault.db'));
    try {
      assert.equal(vault.integrityCheck(), 'ok');
      for (const a of acked.values()) {
        const stored = vault.entry(a.seq);
        assert.ok(stored, `acknowledged seq ${a.seq} (${a.ref}) is missing after the crash`);
        assert.equal(stored.entry.ref, a.ref);
        assert.equal(stored.entry.amount.toString(), a.amount);
        assert.equal(Buffer.from(stored.leaf).toString('hex'), a.leaf);
      }
      const refs = new Set<string>();
      let seq = 0;
      let sum = 0n;
      for (const row of vault.scan()) {
        assert.equal(row.seq, seq++, 'seq has no gaps');
        const key = `${row.subject}|${row.ref}`;
        assert.ok(!refs.has(key), `ref ${row.ref} booked twice`);
        refs.add(key);
        sum += BigInt(JSON.parse(row.canonical).amount);
      }
      assert.equal(seq, vault.size);
      assert.equal(vault.totals.entries, vault.size, 'aggregates committed with their rows');
      assert.equal(vault.totals.amount, sum);
      t.diagnostic(`trial ${trial}: ${vault.size} rows, ${acked.size} acknowledged, ${inFlight.size} in flight at the kill`);
      assert.ok(acked.size > ackedBefore, 'the node booked something in this trial');
    } finally {
      vault.close();
    }
  }
  // After all the kills: the log repairs itself and the full offline audit is clean.
  const data = dataDir(tmp.dir);
  const vault = await Vault.open(data.vaultFile);
  try {
    const origin = loadConfig(data).node.origin;
    const log = new TransparencyLog(vault, origin, nodeSigner(origin, loadNodeKey(data)));
    log.open();
    log.cut();
    const report = auditVault(vault, { keyName: origin, publicKey: log.signer.publicKey });
    assert.deepEqual(report.problems, []);
    assert.equal(report.entries, vault.size);
  } finally {
    vault.close();
  }
});
