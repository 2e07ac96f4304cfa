/**
 * The one place that imports node:fs / node:path / node:os. Deno serves these
 * through its Node compatibility layer, so the rest of the code only ever sees
 * this module (STYLE.md: node: imports behind a small runtime seam).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';

export { fs, path, os };

export const isWindows = os.platform() === 'win32';

export function tmpDir(): string {
  return os.tmpdir();
}

/** fsync a directory so a newly created or removed entry survives power loss (no-op on Windows). */
export function fsyncDir(dir: string): void {
  if (isWindows) return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync on libuv's thread pool, so the event loop keeps serving while the disk works. */
export function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
}

/** Writes a file atomically (temp + rename + dir fsync) with the given mode. */
export function writeFileDurable(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  if (!isWindows) fs.chmodSync(file, mode);
  fsyncDir(path.dirname(file));
}
