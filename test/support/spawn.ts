/** Runs the real `nexus` CLI (from source, through tsx) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliArgs = ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts')];

export interface Child {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `nexus start …` and resolves once it printed its listening line. */
export function startCli(args: string[], env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, [...cliArgs, 'start', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${out}\n${err}`)), 20_000);
    proc.stderr!.on('data', (d) => { err += d; });
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /\{"event":"listening","port":(\d+),"adminPort":(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), adminPort: Number(m[2]), stdout: () => out, stderr: () => err, exited });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before listening:\n${out}\n${err}`));
    });
  });
}

/** Runs a CLI command to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [...cliArgs, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
