/** Process-level facts and hooks (argv, env, signals, exit), behind one seam. */
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';

export { spawn, type ChildProcess };

export { parseArgs };

export function argv(): string[] {
  return process.argv.slice(2);
}

export function env(name: string): string | undefined {
  return process.env[name];
}

export function pid(): number {
  return process.pid;
}

/** Calls fn once on the first SIGINT or SIGTERM (Ctrl+C / service stop on every platform). */
export function onShutdownSignal(fn: (signal: string) => void): void {
  let fired = false;
  const handler = (signal: string) => {
    if (fired) return;
    fired = true;
    fn(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  if (process.platform === 'win32') process.on('SIGBREAK', handler);
}

export function exit(code: number): never {
  process.exit(code);
}

// A closed stdout (piped into `head`, a log shipper that died) must not take
// the node down: the log file still gets every line.
let stdoutGuarded = false;

export function stdoutLine(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', () => {});
  }
  process.stdout.write(`${line}\n`);
}

export function stderrLine(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Starts a detached background process with stdout/stderr to `fd`; returns its pid. */
export function spawnDetached(file: string, args: string[], fd: number): number {
  const child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], windowsHide: true });
  child.unref();
  return child.pid!;
}

/** Is a process with this pid alive? (EPERM: it exists but is someone else's.) */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
