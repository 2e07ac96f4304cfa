/**
 * The node:fs VFS against a model file: whatever mix of writes (WAL appends it
 * holds back, writes elsewhere), truncates, reads and syncs SQLite makes, the
 * size it reports and the bytes it reads are the model's, and after close
 * the file on disk is the model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import * as C from '@journeyapps/wa-sqlite/src/sqlite-constants.js';
import { NodeFsVFS } from '../src/vault/node-vfs.ts';
import { tempDir } from './support/node.ts';

type Op =
  | { kind: 'append'; length: number }
  | { kind: 'write'; offset: number; length: number }
  | { kind: 'truncate'; size: number }
  | { kind: 'read'; offset: number; length: number }
  | { kind: 'sync' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('append' as const), length: fc.integer({ min: 1, max: 5000 }) }), weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant('write' as const), offset: fc.integer({ min: 0, max: 40_000 }), length: fc.integer({ min: 1, max: 5000 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), size: fc.integer({ min: 0, max: 40_000 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('read' as const), offset: fc.integer({ min: 0, max: 40_000 }), length: fc.integer({ min: 1, max: 5000 }) }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'sync' as const }), weight: 1 },
);

const out = () => {
  const view = new DataView(new ArrayBuffer(8));
  return Object.assign(view, { int: () => view.getInt32(0, true), big: () => view.getBigInt64(0, true) });
};

test('VFS: size, reads and the bytes on disk follow a model file through any writes, truncates, reads and syncs', (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const vfs = new NodeFsVFS('nexus-vfs-test', {});
  let run = 0;
  fc.assert(
    fc.property(fc.boolean(), fc.array(op, { maxLength: 40, size: 'max' }), (wal, ops) => {
      const name = join(tmp.dir, `f${run++}${wal ? '-wal' : ''}`);
      const pFile = run;
      const flags = C.SQLITE_OPEN_READWRITE | C.SQLITE_OPEN_CREATE | (wal ? C.SQLITE_OPEN_WAL : C.SQLITE_OPEN_MAIN_DB);
      assert.equal(vfs.jOpen(name, pFile, flags, out()), C.SQLITE_OK);
      let model = new Uint8Array(0);
      let fill = 1;
      const put = (offset: number, length: number) => {
        const data = new Uint8Array(length).fill(fill++ & 0xff);
        assert.equal(vfs.jWrite(pFile, data, offset), C.SQLITE_OK);
        if (offset + length > model.length) {
          const grown = new Uint8Array(offset + length);
          grown.set(model);
          model = grown;
        }
        model.set(data, offset);
      };
      for (const o of ops) {
        if (o.kind === 'append') put(model.length, o.length);
        else if (o.kind === 'write') put(o.offset, o.length);
        else if (o.kind === 'truncate') {
          assert.equal(vfs.jTruncate(pFile, o.size), C.SQLITE_OK);
          const next = new Uint8Array(o.size);
          next.set(model.subarray(0, o.size));
          model = next;
        } else if (o.kind === 'read') {
          const buf = new Uint8Array(o.length);
          const rc = vfs.jRead(pFile, buf, o.offset);
          const expected = new Uint8Array(o.length);
          expected.set(model.subarray(o.offset, o.offset + o.length));
          assert.equal(rc, o.offset + o.length <= model.length ? C.SQLITE_OK : C.SQLITE_IOERR_SHORT_READ);
          assert.deepEqual(buf, expected);
        } else assert.equal(vfs.jSync(pFile, 0), C.SQLITE_OK);
        const size = out();
        assert.equal(vfs.jFileSize(pFile, size), C.SQLITE_OK);
        assert.equal(size.big(), BigInt(model.length), `size after ${o.kind}`);
      }
      assert.equal(vfs.jClose(pFile), C.SQLITE_OK);
      assert.deepEqual(new Uint8Array(readFileSync(name)), model);
      // Opened again, it knows its size from the disk.
      assert.equal(vfs.jOpen(name, pFile, flags, out()), C.SQLITE_OK);
      const size = out();
      vfs.jFileSize(pFile, size);
      assert.equal(size.big(), BigInt(model.length));
      vfs.jClose(pFile);
    }),
    { numRuns: 150 },
  );
});
