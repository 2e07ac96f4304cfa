/**
 * One writer process per vault. The VFS does no file locking (the WASM build
 * has no shared memory, so WAL runs with locking_mode=EXCLUSIVE), so this pid
 * file is what keeps a second node off the same vault. A lock whose owner is
 * dead (crash, SIGKILL, power loss) is taken over.
 */
import { fs } from '../runtime/fs.ts';
import { processAlive } from '../runtime/process.ts';

export class VaultLockedError extends Error {
  constructor(readonly lockFile: string, readonly pid: number) {
    super(`the vault is in use by process ${pid} (lock file ${lockFile}); stop that node first`);
    this.name = 'VaultLockedError';
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const held = new Set<string>();

export interface PidLock {
  readonly file: string;
  release(): void;
}

/** Takes the lock or throws VaultLockedError naming the live owner. */
export function acquirePidLock(file: string): PidLock {
  if (held.has(file)) throw new VaultLockedError(file, process.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      held.add(file);
      return {
        file,
        release() {
          if (!held.delete(file)) return;
          if (readPid(file) === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = readPid(file);
      if (owner !== undefined && owner !== process.pid && processAlive(owner)) throw new VaultLockedError(file, owner);
      // Dead owner (or an unreadable, half-written file): take it over.
      fs.rmSync(file, { force: true });
    }
  }
  throw new VaultLockedError(file, readPid(file) ?? 0);
}
