/** Process-level facts and hooks (argv, env, signals, exit), behind one seam. */
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { fs, os } from './fs.ts';
// A namespace import: a runtime whose node:v8 lacks setFlagsFromString still loads this module.
import * as v8 from 'node:v8';

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

/**
 * A long-running node keeps a small live heap (~25 MB) but allocates fast
 * under load, and V8 by default lets the old generation grow up to 4× the
 * live size before it collects again: 230 MB resident in a run of batches of
 * 100, most of it garbage waiting. A 1.3× growing factor keeps the node near
 * 175 MB (edge boards have 1–4 GB) for a few percent more GC time; no hard
 * limit is set, so a large live set (the replay window) still fits.
 * Measured with `nexus bench --batch 100` (see bench/compare.sh).
 */
export function tuneHeapForLongRunning(): void {
  try {
    v8.setFlagsFromString?.('--heap-growing-percent=30');
  } catch {
    // A runtime without V8 flags (or that refuses them) keeps its defaults.
  }
}

/**
 * Linux: every thread but the main one — libuv's pool (ed25519 verifies,
 * fsyncs) and V8's helpers — goes to nice 10. The main thread runs the whole
 * request path; each verify handed to the pool woke a thread that took the
 * main thread's core away from it (the profile showed ~100 µs of main-thread
 * time per signed request spent waiting right at the hand-off). At 2,000
 * signed req/s this took the p99 from a median of 123 ms to 36 ms over five
 * alternating pairs (`nexus bench --rate 2000 --warmup 6000`), closed-loop
 * throughput unchanged. Raising a thread's nice needs no privilege; elsewhere
 * (or if refused) nothing changes. Returns how many threads were lowered.
 */
export async function lowerHelperThreadPriority(nice = 10): Promise<number> {
  if (process.platform !== 'linux') return 0;
  try {
    // The pool starts its threads on its first job: make them exist first.
    await new Promise((resolve) => fs.stat('/', resolve));
    let lowered = 0;
    for (const tid of fs.readdirSync('/proc/self/task')) {
      if (Number(tid) === process.pid) continue;
      try {
        os.setPriority(Number(tid), nice);
        lowered++;
      } catch {
        // gone already, or not ours
      }
    }
    return lowered;
  } catch {
    return 0;
  }
}
