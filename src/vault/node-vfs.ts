/**
 * A SQLite VFS on synchronous node:fs calls, so the WASM SQLite writes real
 * files (without one it silently runs in Emscripten's in-memory FS; NOTES.md).
 *
 * Durability rests on three things: xSync really fsyncs (fdatasync for
 * SYNC_DATAONLY), the directory is fsynced after a journal/WAL file is created
 * or a file is deleted with syncDir, and short reads zero-fill. Locking is left
 * to `locking_mode=EXCLUSIVE` plus the vault's pid lock: one writer process.
 *
 * The VFS also remembers which database, journal and WAL files were written
 * since their last fsync, so the vault can make a commit durable itself —
 * off the event loop — instead of SQLite fsyncing inside COMMIT. For the same
 * reason it can run a WAL checkpoint with the database fsync owed rather than
 * done (see checkpointOwingSync).
 */
import { FacadeVFS } from '@journeyapps/wa-sqlite/src/FacadeVFS.js';
import * as C from '@journeyapps/wa-sqlite/src/sqlite-constants.js';
import { fs, path, fsyncDir, tmpDir } from '../runtime/fs.ts';

interface OpenFile {
  fd: number;
  name: string;
  flags: number;
  /** A database, journal or WAL file (not a temp file): its writes must reach the disk. */
  durable: boolean;
  /** Written or truncated since its last fsync. */
  dirty: boolean;
  /**
   * Its size, held-back bytes included. This process is the file's only user
   * (pid lock + locking_mode=EXCLUSIVE), so it changes only through jWrite and
   * jTruncate. (`nexus verify` of 1M entries asked for it 872k times: an
   * fstat each, ~1 µs, ~3% of its time.)
   */
  size: number;
  /** WAL appends held back to go out in one write (see jWrite); the buffer is reused. */
  pending?: { offset: number; length: number; buffer: Uint8Array };
  /** The database file this journal or WAL belongs to (open before it, closed after it). */
  db?: OpenFile;
  /**
   * A database file: a checkpoint wrote pages whose fsync is owed (the WAL
   * must not be written until it is done); 'failed' once paying it failed,
   * for good (a later fsync that succeeds proves nothing about those pages).
   */
  owed?: boolean | 'failed';
  /** A WAL file: bytes written to it since it was opened or the vault reset the count (see walBytes). */
  walBytes?: number;
}

/** Held-back WAL bytes are written out at this size even without a reason to. */
const PENDING_MAX = 1 << 20;

interface DataLike {
  subarray(start?: number, end?: number): Uint8Array;
  fill(v: number, start?: number, end?: number): unknown;
  readonly byteLength: number;
}

interface Int32Out {
  setInt32(offset: number, value: number, littleEndian?: boolean): void;
}

interface BigInt64Out {
  setBigInt64(offset: number, value: bigint, littleEndian?: boolean): void;
}

/** A 64-bit integer that Emscripten passes as two 32-bit halves (file offsets, column values), exact below 2^53. */
export function fromHalves(lo: number, hi: number): number {
  return hi * 0x100000000 + (lo >>> 0);
}

const IOCAP_POWERSAFE_OVERWRITE = 0x1000;
const SECTOR_SIZE = 4096;

export class NodeFsVFS extends FacadeVFS {
  override mxPathname = 1024;
  readonly #files = new Map<number, OpenFile>();
  /** Database files whose checkpoint runs in checkpointOwingSync now. */
  readonly #owing = new Set<string>();
  #tempCounter = 0;

  constructor(name: string, module: unknown) {
    super(name, module);
  }

  // FacadeVFS hands jRead/jWrite a proxy object built per call (it re-reads
  // HEAPU8 in case WASM memory grew); every page SQLite reads or writes paid
  // for one: ~4% of the vault's CPU with single events (bench/commit.ts
  // --cpu-prof). A view made here is as safe: nothing in jRead or jWrite runs
  // WASM code that could grow the memory under it.
  override xRead(pFile: number, pData: number, iAmt: number, iOffsetLo: number, iOffsetHi: number): number {
    return this.jRead(pFile, this._module.HEAPU8.subarray(pData, pData + iAmt), fromHalves(iOffsetLo, iOffsetHi));
  }

  override xWrite(pFile: number, pData: number, iAmt: number, iOffsetLo: number, iOffsetHi: number): number {
    return this.jWrite(pFile, this._module.HEAPU8.subarray(pData, pData + iAmt), fromHalves(iOffsetLo, iOffsetHi));
  }

  override getFilename(pFile: number): string {
    return this.#files.get(pFile)?.name ?? '';
  }

  override jOpen(filename: string | null, pFile: number, flags: number, pOutFlags: Int32Out): number {
    try {
      let name = filename;
      if (!name) {
        // Temp files arrive without a name; they live beside nothing and die on close.
        name = path.join(tmpDir(), `nexus-sqlite-${process.pid}-${Date.now()}-${this.#tempCounter++}`);
        flags |= C.SQLITE_OPEN_DELETEONCLOSE | C.SQLITE_OPEN_CREATE;
      }
      const create = (flags & C.SQLITE_OPEN_CREATE) !== 0;
      const existed = fs.existsSync(name);
      if (!existed && !create) return C.SQLITE_CANTOPEN;
      let mode = (flags & C.SQLITE_OPEN_READWRITE) !== 0 ? fs.constants.O_RDWR : fs.constants.O_RDONLY;
      if (create) mode |= fs.constants.O_CREAT;
      if ((flags & C.SQLITE_OPEN_EXCLUSIVE) !== 0) mode |= fs.constants.O_EXCL;
      const fd = fs.openSync(name, mode, 0o600);
      const durable = (flags & (C.SQLITE_OPEN_MAIN_DB | C.SQLITE_OPEN_MAIN_JOURNAL | C.SQLITE_OPEN_WAL)) !== 0;
      const wal = (flags & C.SQLITE_OPEN_WAL) !== 0;
      const size = existed ? fs.fstatSync(fd).size : 0;
      const file: OpenFile = { fd, name, flags, durable, dirty: false, size };
      if (wal) Object.assign(file, { pending: { offset: 0, length: 0, buffer: new Uint8Array(64 * 1024) }, walBytes: 0 });
      if ((flags & (C.SQLITE_OPEN_MAIN_JOURNAL | C.SQLITE_OPEN_WAL)) !== 0) file.db = this.#mainFile(name.replace(/-(wal|journal)$/, ''));
      this.#files.set(pFile, file);
      if (!existed && (flags & (C.SQLITE_OPEN_MAIN_DB | C.SQLITE_OPEN_MAIN_JOURNAL | C.SQLITE_OPEN_WAL)) !== 0) {
        fsyncDir(path.dirname(name));
      }
      pOutFlags.setInt32(0, flags, true);
      return C.SQLITE_OK;
    } catch {
      return C.SQLITE_CANTOPEN;
    }
  }

  override jDelete(filename: string, syncDir: number): number {
    try {
      fs.unlinkSync(filename);
      if (syncDir) fsyncDir(path.dirname(filename));
      return C.SQLITE_OK;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return C.SQLITE_IOERR_DELETE_NOENT;
      return C.SQLITE_IOERR_DELETE;
    }
  }

  override jAccess(filename: string, _flags: number, pResOut: Int32Out): number {
    try {
      // A zero-size file counts as absent, as os_unix.c does for journals.
      pResOut.setInt32(0, fs.statSync(filename).size > 0 ? 1 : 0, true);
    } catch {
      pResOut.setInt32(0, 0, true);
    }
    return C.SQLITE_OK;
  }

  override jFullPathname(filename: string, zOut: Uint8Array): number {
    return super.jFullPathname(path.resolve(filename), zOut);
  }

  override jClose(pFile: number): number {
    const file = this.#files.get(pFile);
    if (!file) return C.SQLITE_OK;
    this.#files.delete(pFile);
    try {
      // Nothing written may be left unsynced by a close (a deferred sync may be pending).
      this.#flush(file);
      if (file.dirty || file.owed) fs.fsyncSync(file.fd);
      fs.closeSync(file.fd);
      if ((file.flags & C.SQLITE_OPEN_DELETEONCLOSE) !== 0) fs.rmSync(file.name, { force: true });
      return C.SQLITE_OK;
    } catch {
      return C.SQLITE_IOERR_CLOSE;
    }
  }

  override jRead(pFile: number, pData: DataLike, iOffset: number): number {
    const file = this.#files.get(pFile);
    if (!file) return C.SQLITE_IOERR_READ;
    const buf = pData.subarray();
    try {
      this.#flush(file);
      let done = 0;
      while (done < buf.byteLength) {
        const n = fs.readSync(file.fd, buf, done, buf.byteLength - done, iOffset + done);
        if (n === 0) break;
        done += n;
      }
      if (done < buf.byteLength) {
        buf.fill(0, done);
        return C.SQLITE_IOERR_SHORT_READ;
      }
      return C.SQLITE_OK;
    } catch {
      return C.SQLITE_IOERR_READ;
    }
  }

  /**
   * A commit appends each WAL frame as two writes (24-byte header, page): a
   * group of ten requests made ~120 write calls, the largest single cost of a
   * commit. Appends to the WAL are therefore held here (copied into a reused
   * buffer: SQLite reuses its own) and go out as one write before anything that could observe
   * them — a read, a truncate, a sync, a close, takeUnsynced() — or
   * a non-contiguous write. Until then they are exactly as durable as
   * page-cache bytes were: not at all, and nobody has been told otherwise.
   */
  override jWrite(pFile: number, pData: DataLike, iOffset: number): number {
    const file = this.#files.get(pFile);
    if (!file) return C.SQLITE_IOERR_WRITE;
    const buf = pData.subarray();
    try {
      this.#payOwed(file);
      if (file.durable) file.dirty = true;
      if (file.walBytes !== undefined) file.walBytes += buf.byteLength;
      const p = file.pending;
      if (p) {
        if (p.length > 0 && (p.offset + p.length !== iOffset || p.length + buf.byteLength > PENDING_MAX)) this.#flush(file);
        if (p.length === 0) p.offset = iOffset;
        if (p.length + buf.byteLength > p.buffer.byteLength) {
          const grown = new Uint8Array(Math.max(p.buffer.byteLength * 2, p.length + buf.byteLength));
          grown.set(p.buffer.subarray(0, p.length));
          p.buffer = grown;
        }
        p.buffer.set(buf, p.length);
        p.length += buf.byteLength;
      } else {
        this.#write(file, buf, iOffset);
      }
      // Held or written: the file (as SQLite sees it) now reaches this far.
      if (iOffset + buf.byteLength > file.size) file.size = iOffset + buf.byteLength;
      return C.SQLITE_OK;
    } catch {
      return C.SQLITE_IOERR_WRITE;
    }
  }

  /** Writes out held-back WAL appends (throws on failure: the caller reports its own I/O error). */
  #flush(file: OpenFile): void {
    const p = file.pending;
    if (!p || p.length === 0) return;
    const length = p.length;
    p.length = 0; // a failed write is not retried from here: SQLite gets the I/O error
    this.#write(file, p.buffer.subarray(0, length), p.offset);
  }

  /**
   * Every write to disk goes through here. A failed one may have written part
   * of its bytes: the file holds what it holds, so its size is asked of the disk again.
   */
  #write(file: OpenFile, buf: Uint8Array, offset: number): void {
    try {
      writeAll(file.fd, buf, offset);
    } catch (e) {
      try {
        file.size = fs.fstatSync(file.fd).size;
      } catch {
        // the error that brought us here is already on its way to SQLite
      }
      throw e;
    }
  }

  override jTruncate(pFile: number, size: number): number {
    const file = this.#files.get(pFile);
    if (!file) return C.SQLITE_IOERR_TRUNCATE;
    try {
      this.#payOwed(file);
      this.#flush(file);
      fs.ftruncateSync(file.fd, size);
      file.size = size; // only once the disk has it (a failed flush re-read it in #write)
      if (file.durable) file.dirty = true;
      return C.SQLITE_OK;
    } catch {
      return C.SQLITE_IOERR_TRUNCATE;
    }
  }

  override jSync(pFile: number, flags: number): number {
    const file = this.#files.get(pFile);
    if (!file) return C.SQLITE_IOERR_FSYNC;
    try {
      if (file.owed === 'failed') return C.SQLITE_IOERR_FSYNC;
      if (this.#owing.has(file.db?.name ?? file.name)) {
        // The WAL is fsynced already (checkpointOwingSync's precondition) and
        // the database's fsync is owed, to be done on the thread pool.
        if (!file.db) {
          file.owed = true;
          return C.SQLITE_OK;
        }
        if (!file.dirty) return C.SQLITE_OK;
      }
      this.#flush(file);
      if ((flags & C.SQLITE_SYNC_DATAONLY) !== 0) fs.fdatasyncSync(file.fd);
      else fs.fsyncSync(file.fd);
      file.dirty = false;
      if (file.owed) file.owed = false;
      return C.SQLITE_OK;
    } catch {
      return C.SQLITE_IOERR_FSYNC;
    }
  }

  override jFileSize(pFile: number, pSize: BigInt64Out): number {
    const file = this.#files.get(pFile);
    if (!file) return C.SQLITE_IOERR_FSTAT;
    pSize.setBigInt64(0, BigInt(file.size), true);
    return C.SQLITE_OK;
  }

  // One writer process (pid lock + locking_mode=EXCLUSIVE): file locks are moot.
  override jLock(): number {
    return C.SQLITE_OK;
  }

  override jUnlock(): number {
    return C.SQLITE_OK;
  }

  override jCheckReservedLock(_pFile: number, pResOut: Int32Out): number {
    pResOut.setInt32(0, 0, true);
    return C.SQLITE_OK;
  }

  override jSectorSize(): number {
    return SECTOR_SIZE;
  }

  // Without POWERSAFE_OVERWRITE SQLite pads WAL frames to sectors (2.3× the writes; NOTES.md).
  override jDeviceCharacteristics(): number {
    return IOCAP_POWERSAFE_OVERWRITE;
  }

  /**
   * The descriptors of the database file `mainFile` and its journal/WAL that
   * were written since their last fsync (all of them with `all`), marked clean:
   * the caller fsyncs them. A write after this call marks its file dirty again.
   */
  takeUnsynced(mainFile: string, all = false): number[] {
    const fds: number[] = [];
    for (const file of this.#files.values()) {
      if (!file.durable || (!file.dirty && !all)) continue;
      if (file.name !== mainFile && !file.name.startsWith(`${mainFile}-`)) continue;
      this.#flush(file);
      file.dirty = false;
      fds.push(file.fd);
    }
    return fds;
  }

  /**
   * Runs a WAL checkpoint (fn) of `mainFile` without fsyncing on the event
   * loop. Only call it when every commit is fsynced: the WAL fsync SQLite asks
   * for first is then skipped. The database fsync it asks for after copying
   * pages is owed instead: the caller takes it with takeUnsynced(), fsyncs it
   * on the thread pool and then calls paidOwed(). Until then SQLite must not
   * restart the WAL over the frames those pages came from, so the first write
   * to the WAL or journal pays the debt itself, with an fsync here (what
   * SQLite would have done, only later).
   */
  checkpointOwingSync<T>(mainFile: string, fn: () => T): T {
    this.#owing.add(mainFile);
    try {
      return fn();
    } finally {
      this.#owing.delete(mainFile);
    }
  }

  /** The caller's fsync of `mainFile` (taken after checkpointOwingSync) returned: nothing is owed. */
  paidOwed(mainFile: string): void {
    const db = this.#mainFile(mainFile);
    if (db?.owed === true) db.owed = false;
  }

  /** Bytes written to the WAL of `mainFile` since it was opened or `reset` (the vault checkpoints by it). */
  walBytes(mainFile: string, reset = false): number {
    for (const file of this.#files.values()) {
      if (file.walBytes !== undefined && file.db?.name === mainFile) {
        const n = file.walBytes;
        if (reset) file.walBytes = 0;
        return n;
      }
    }
    return 0;
  }

  /** Before a journal or WAL changes: the database fsync a checkpoint owes is done now. */
  #payOwed(file: OpenFile): void {
    const db = file.db;
    if (!db?.owed) return;
    if (db.owed === 'failed') throw new Error('the fsync a checkpoint owed failed');
    try {
      fs.fsyncSync(db.fd);
    } catch (e) {
      db.owed = 'failed';
      throw e;
    }
    db.owed = false;
  }

  #mainFile(name: string): OpenFile | undefined {
    for (const file of this.#files.values()) {
      if (file.name === name && (file.flags & C.SQLITE_OPEN_MAIN_DB) !== 0) return file;
    }
    return undefined;
  }

  /** Closes every file still open (after the database handle is closed). */
  override close(): void {
    for (const pFile of [...this.#files.keys()]) this.jClose(pFile);
  }
}

function writeAll(fd: number, buf: Uint8Array, offset: number): void {
  let done = 0;
  while (done < buf.byteLength) done += fs.writeSync(fd, buf, done, buf.byteLength - done, offset + done);
}
