/**
 * Power loss, simulated at the file-system calls (a SIGKILL keeps the page
 * cache, so crash.test.ts cannot see a wrong fsync order; this can). Every
 * write, truncate and fsync the vault makes on its files is recorded. At
 * random moments — in the middle of a commit, of a WAL checkpoint, while a
 * thread-pool fsync runs — the test takes the image a power cut could leave:
 * what the last finished fsync of each file covered, and beyond it each 4 KiB
 * page of the file at any point of its history since (the kernel writes pages
 * back whenever it likes, in any order), the file size likewise. Each image
 * must open as a sound vault that holds every event acknowledged before the
 * cut, unchanged, and passes the full audit.
 *
 * Checkpoints are made frequent (every 96 KiB of WAL) so that cuts land
 * between a checkpoint's page copies, its database fsync on the thread pool,
 * and the WAL restart after it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { fsyncAsync } from '../src/runtime/fs.ts';
import { Vault } from '../src/vault/vault.ts';
import { GroupCommitter } from '../src/vault/group-commit.ts';
import { TransparencyLog } from '../src/log/log.ts';
import { testSigner, auditFile } from './support/log.ts';
import { tempDir } from './support/node.ts';
import { nodeFs, patchNodeFs } from './support/fs-patch.ts';

const PAGE = 4096;
type Op = { offset: number; data: Uint8Array } | { size: number };

interface Tracked {
  /** The bytes a power cut keeps for sure: what the last finished fsync covered. */
  durable: Uint8Array;
  /** Writes and truncates since, in order. */
  ops: Op[];
}

function apply(image: Uint8Array, op: Op, page?: number): Uint8Array {
  if ('size' in op) {
    if (page !== undefined) {
      // Only this page's part of the truncate: the bytes it cut read as zeros.
      const from = Math.max(op.size, page * PAGE);
      if (from < image.length) image.fill(0, from, Math.min(image.length, (page + 1) * PAGE));
      return image;
    }
    const out = new Uint8Array(op.size);
    out.set(image.subarray(0, op.size));
    return out;
  }
  let lo = op.offset;
  let hi = op.offset + op.data.length;
  if (page !== undefined) {
    lo = Math.max(lo, page * PAGE);
    hi = Math.min(hi, (page + 1) * PAGE);
    if (lo >= hi) return image;
  }
  if (hi > image.length) {
    const grown = new Uint8Array(hi);
    grown.set(image);
    image = grown;
  }
  image.set(op.data.subarray(lo - op.offset, hi - op.offset), lo);
  return image;
}

const touches = (op: Op, page: number) =>
  'size' in op ? op.size < (page + 1) * PAGE : op.offset < (page + 1) * PAGE && op.offset + op.data.length > page * PAGE;

/** One image a power cut could leave of this file, drawn with `random`. */
function cutImage(f: Tracked, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * (n + 1));
  // The size: as of some moment since the last fsync.
  const sizes = [f.durable.length];
  let latest: Uint8Array = f.durable.slice();
  for (const op of f.ops) {
    latest = apply(latest, op);
    sizes.push(latest.length);
  }
  const size = sizes[pick(f.ops.length)]!;
  let image: Uint8Array = new Uint8Array(Math.max(size, f.durable.length));
  image.set(f.durable);
  const pages = Math.ceil(latest.length / PAGE) + 1;
  for (let page = 0; page < pages; page++) {
    const history = f.ops.filter((op) => touches(op, page));
    if (history.length === 0) continue;
    // This page as of some moment in its history: the first k changes reached the disk.
    const k = pick(history.length);
    for (let i = 0; i < k; i++) image = apply(image, history[i]!, page);
  }
  return image.length === size ? image : apply(image, { size });
}

interface Cut {
  files: Map<string, Uint8Array>;
  acked: Map<number, string>;
  at: string;
}

test('power cut at random moments (commits, checkpoints, fsyncs): every image recovers to a sound vault with every acknowledged event', { timeout: 180_000 }, async (t) => {
  const tmp = tempDir('nexus-power-');
  t.after(tmp.cleanup);
  const file = join(tmp.dir, 'vault.db');
  const seed = Number(process.env.NEXUS_POWER_SEED ?? Date.now() % 1_000_000);
  // Uniform draws in [0, 1) from fast-check's seeded generator (noBias: its arbitraries favour edge values).
  const [draws] = fc.sample(fc.infiniteStream(fc.noBias(fc.integer({ min: 0, max: 0xffffffff }))), { numRuns: 1, seed });
  const random = () => draws!.next().value! / 2 ** 32;
  t.diagnostic(`seed ${seed}: NEXUS_POWER_SEED=${seed} replays its draws (the thread pool may still time things differently)`);

  const acked = new Map<number, string>();
  const cuts: Cut[] = [];
  let cutChance = 0;
  const disk = recordDisk(tmp.dir, (at) => {
    if (random() >= cutChance) return;
    cuts.push({ files: disk.image(random), acked: new Map(acked), at });
  });
  t.after(disk.restore);

  const signer = testSigner();
  const vault = await Vault.open(file, { checkpointWalBytes: 96 * 1024, checkpointCommits: 1 });
  const log = new TransparencyLog(vault, signer.name, signer);
  log.open();
  const committer = new GroupCommitter(vault, { integrate: (leaves, n) => log.tree.integrate(leaves, n) });
  let checkpoints = 0;
  const realCheckpoint = vault.checkpointInBackground.bind(vault);
  vault.checkpointInBackground = () => {
    const paying = realCheckpoint();
    if (paying) checkpoints++;
    return paying;
  };

  cutChance = 0.01;
  let n = 0;
  const workers = Array.from({ length: 12 }, async (_, w) => {
    for (let i = 0; i < 60; i++) {
      const subject = `dev:${w % 5}`;
      const events = Array.from({ length: 1 + (i % 3 === 0 ? 7 : 0) }, () => ({ amount: BigInt(++n * 7), beneficiary: subject, ref: `w${w}-${n}` }));
      const outcome = await committer.submit({ subject, events, evidence: new TextEncoder().encode(`evidence ${w} ${i}`) });
      assert.equal(outcome.kind, 'booked');
      if (outcome.kind === 'booked') for (const r of outcome.receipts) acked.set(r.seq, r.leaf);
      // Now and then a transaction off the group committer's path (it may meet a checkpoint's owed fsync).
      if (i % 17 === 5) vault.addDevice(`did:key:z${w}-${i}`, null);
    }
  });
  await Promise.all(workers);
  cutChance = 0;
  await committer.close();
  vault.close();
  disk.restore();

  assert.ok(checkpoints >= 5, `checkpoints ran in the background (${checkpoints})`);
  assert.ok(cuts.length >= 5, `enough cuts were taken (${cuts.length}; ~20 expected)`);
  t.diagnostic(`${acked.size} events, ${checkpoints} background checkpoints, ${cuts.length} cuts`);

  for (const [i, cut] of cuts.entries()) {
    await assertRecovers(join(tmp.dir, `cut${i}`), cut, signer, `cut ${i} (${cut.at}, ${cut.acked.size} acknowledged)`);
  }
});

test('a transaction that meets a checkpoint whose database fsync is still running fsyncs the database before it writes the WAL', async (t) => {
  const tmp = tempDir('nexus-power-');
  t.after(tmp.cleanup);
  const disk = recordDisk(tmp.dir);
  t.after(disk.restore);
  let hold: Promise<void> | undefined;
  let release!: () => void;
  const signer = testSigner();
  const vault = await Vault.open(join(tmp.dir, 'vault.db'), {
    checkpointWalBytes: 64 * 1024,
    checkpointCommits: 1,
    fsyncAsync: (fd) => (hold ?? Promise.resolve()).then(() => fsyncAsync(fd)),
  });
  const log = new TransparencyLog(vault, signer.name, signer);
  log.open();
  const committer = new GroupCommitter(vault, { integrate: (leaves, n) => log.tree.integrate(leaves, n) });
  const acked = new Map<number, string>();
  let met: Cut | undefined;
  const realCheckpoint = vault.checkpointInBackground.bind(vault);
  vault.checkpointInBackground = () => {
    if (met) return realCheckpoint();
    hold = new Promise<void>((r) => (release = r));
    const paying = realCheckpoint();
    if (!paying) {
      hold = undefined;
      release();
      return paying;
    }
    // The database fsync is on its way (held here). A transaction off the
    // committer's path comes now and writes the WAL, which SQLite restarts
    // over the frames the checkpoint copied. The power fails right after it:
    // nothing reached the disk but what was fsynced.
    vault.addDevice('did:key:zMeetsTheCheckpoint', null);
    met = { files: disk.image(() => 0), acked: new Map(acked), at: 'after a transaction met an owed database fsync' };
    hold = undefined;
    release();
    return paying;
  };
  for (let i = 0; i < 200 && !met; i++) {
    const outcome = await committer.submit({ subject: 'dev:a', events: Array.from({ length: 4 }, (_, k) => ({ amount: BigInt(i * 4 + k + 1), beneficiary: 'dev:a', ref: null })), evidence: new TextEncoder().encode(`e${i}`) });
    if (outcome.kind === 'booked') for (const r of outcome.receipts) acked.set(r.seq, r.leaf);
  }
  await committer.close();
  vault.close();
  disk.restore();
  assert.ok(met, 'a checkpoint ran');
  await assertRecovers(join(tmp.dir, 'cut'), met, signer, met.at);
});

/** Opens the image of a cut as a vault: sound, every acknowledged event there unchanged, the full audit clean. */
async function assertRecovers(dir: string, cut: Cut, signer: ReturnType<typeof testSigner>, what: string): Promise<void> {
  mkdirSync(dir);
  for (const [name, bytes] of cut.files) writeFileSync(join(dir, basename(name)), bytes);
  const v = await Vault.open(join(dir, 'vault.db'));
  try {
    assert.equal(v.integrityCheck(), 'ok', what);
    assert.ok(v.size >= cut.acked.size, `${what}: ${v.size} entries`);
    for (const [seq, leaf] of cut.acked) {
      const e = v.entry(seq);
      assert.ok(e, `${what}: acknowledged seq ${seq} is gone`);
      assert.equal(Buffer.from(e.leaf).toString('hex'), leaf, `${what}: seq ${seq} changed`);
    }
  } finally {
    v.close();
  }
  const report = await auditFile({ file: join(dir, 'vault.db'), signer });
  assert.equal(report.ok, true, `${what}: ${JSON.stringify(report).slice(0, 400)}`);
}

/**
 * Records every write, truncate and fsync on the vault files in `dir` (the
 * VFS's node:fs calls, replaced here), so that image() can say what a power
 * cut at this moment could leave. `onEvent` runs before each write and fsync.
 */
function recordDisk(dir: string, onEvent: (at: string) => void = () => {}) {
  const real = { openSync: nodeFs.openSync, closeSync: nodeFs.closeSync, unlinkSync: nodeFs.unlinkSync, writeSync: nodeFs.writeSync, ftruncateSync: nodeFs.ftruncateSync, fsyncSync: nodeFs.fsyncSync, fdatasyncSync: nodeFs.fdatasyncSync, fsync: nodeFs.fsync };
  const tracked = new Map<string, Tracked>();
  const byFd = new Map<number, string>();
  const synced = (fd: number, count?: number) => {
    const f = tracked.get(byFd.get(fd) ?? '');
    if (!f) return;
    const done = f.ops.splice(0, count ?? f.ops.length);
    for (const op of done) f.durable = apply(f.durable, op);
  };
  const restore = patchNodeFs({
    openSync(path: string, ...rest: unknown[]) {
      const fd = (real.openSync as (...a: unknown[]) => number)(path, ...rest);
      if (typeof path === 'string' && path.startsWith(dir) && /vault\.db(-wal|-journal)?$/.test(path)) {
        byFd.set(fd, path);
        // A new file's directory entry is fsynced by the VFS at creation.
        if (!tracked.has(path)) {
          tracked.set(path, { durable: new Uint8Array(0), ops: [] }); // first: readFileSync opens it too
          tracked.get(path)!.durable = new Uint8Array(nodeFs.readFileSync(path));
        }
      }
      return fd;
    },
    unlinkSync(path: string) {
      // The VFS fsyncs the directory after deleting a journal when SQLite asks: taken as durable.
      tracked.delete(path);
      return real.unlinkSync(path);
    },
    closeSync(fd: number) {
      byFd.delete(fd);
      return real.closeSync(fd);
    },
    writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number) {
      const name = byFd.get(fd);
      if (name) {
        onEvent(`before a write to ${name.slice(-7)}`);
        tracked.get(name)!.ops.push({ offset: position, data: buf.slice(offset, offset + length) });
      }
      return (real.writeSync as (...a: unknown[]) => number)(fd, buf, offset, length, position);
    },
    ftruncateSync(fd: number, size: number) {
      const name = byFd.get(fd);
      if (name) tracked.get(name)!.ops.push({ size });
      return real.ftruncateSync(fd, size);
    },
    fsyncSync(fd: number) {
      onEvent('before an fsync on the event loop');
      real.fsyncSync(fd);
      synced(fd);
    },
    fdatasyncSync(fd: number) {
      onEvent('before an fdatasync on the event loop');
      real.fdatasyncSync(fd);
      synced(fd);
    },
    fsync(fd: number, cb: (e: Error | null) => void) {
      // A thread-pool fsync covers what was written before it started.
      const count = tracked.get(byFd.get(fd) ?? '')?.ops.length;
      real.fsync(fd, (e: NodeJS.ErrnoException | null) => {
        onEvent('while a thread-pool fsync ran');
        if (!e) synced(fd, count);
        cb(e);
      });
    },
  } as Partial<typeof nodeFs>);

  return {
    /** An image a power cut now could leave, drawn with `random` (always 0: only what was fsynced). */
    image(random: () => number): Map<string, Uint8Array> {
      const files = new Map<string, Uint8Array>();
      for (const [name, f] of tracked) files.set(name, cutImage(f, random));
      return files;
    },
    restore,
  };
}
