/** A real vault with its Merkle log in a temp directory, fed through the group committer. */
import { generateKeyPairSync, sign, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { Vault } from '../../src/vault/vault.ts';
import { GroupCommitter } from '../../src/vault/group-commit.ts';
import { TransparencyLog, type NoteSigner } from '../../src/log/log.ts';
import { auditVault, type AuditOptions, type AuditReport } from '../../src/log/audit.ts';
import { Database } from '../../src/vault/sqlite.ts';
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

/** A vault file opened raw (no Vault, no pid lock): to tamper with it, or to build an old schema by hand. */
export async function openRaw(file: string): Promise<Database> {
  const db = await Database.open(file);
  db.exec('PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;');
  return db;
}

/** Runs SQL on a closed vault behind the node's back. */
export async function tamper(file: string, sql: string): Promise<void> {
  const db = await openRaw(file);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

/** The offline audit (`nexus verify`) of a closed test log. */
export async function auditFile(tl: { file: string; signer: { name: string; publicKey: Uint8Array } }, options: Partial<AuditOptions> = {}): Promise<AuditReport> {
  const vault = await Vault.open(tl.file);
  try {
    return auditVault(vault, { keyName: tl.signer.name, publicKey: tl.signer.publicKey, ...options });
  } finally {
    vault.close();
  }
}
