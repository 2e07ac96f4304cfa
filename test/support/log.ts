/** A real vault with its Merkle log in a temp directory, fed through the group committer. */
import { generateKeyPairSync, sign, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { Vault } from '../../src/vault/vault.ts';
import { GroupCommitter } from '../../src/vault/group-commit.ts';
import { TransparencyLog, type NoteSigner } from '../../src/log/log.ts';
import { tempDir } from './node.ts';

export function testSigner(name = 'test.example/log'): NoteSigner {
  const { privateKey } = generateKeyPairSync('ed25519');
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { name, publicKey: new Uint8Array(spki.subarray(spki.length - 32)), sign: (m) => new Uint8Array(sign(null, m, privateKey)) };
}

export interface TestLog {
  dir: string;
  file: string;
  vault: Vault;
  log: TransparencyLog;
  committer: GroupCommitter;
  signer: NoteSigner;
  /** Books `count` events in one submission. */
  book(count: number, subject?: string): Promise<void>;
  close(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function openTestLog(existing?: { dir: string; signer: NoteSigner }): Promise<TestLog> {
  const tmp = existing ? { dir: existing.dir, cleanup() {} } : tempDir('nexus-log-');
  const file = join(tmp.dir, 'vault.db');
  const signer = existing?.signer ?? testSigner();
  const vault = await Vault.open(file);
  const log = new TransparencyLog(vault, signer.name, signer);
  log.open();
  const committer = new GroupCommitter(vault, { integrate: (leaves, n) => log.tree.integrate(leaves, n) });
  let n = 0;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await committer.close();
    vault.close();
  };
  return {
    dir: tmp.dir, file, vault, log, committer, signer,
    async book(count, subject = 'dev:test') {
      const events = Array.from({ length: count }, () => ({ amount: BigInt(++n * 7), beneficiary: subject, ref: null }));
      await committer.submit({ subject, events, evidence: new TextEncoder().encode('evidence') });
    },
    close,
    async cleanup() {
      await close();
      tmp.cleanup();
    },
  };
}
