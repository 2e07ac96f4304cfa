/**
 * Tunnel supervision. The real cloudflared and ngrok need the internet, so
 * these tests use stand-in executables that behave like them on this machine:
 * they print the public URL the way the real ones do and then keep running
 * (or crash, to exercise the restart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { tempDir } from './support/node.ts';
import { cliArgs, root, runCli, startCli } from './support/spawn.ts';
import { parsePublicUrl } from '../src/gateway/tunnel.ts';

function standIn(dir: string, name: string, script: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!${process.execPath}\n${script}\n`);
  chmodSync(file, 0o755);
  return file;
}

test('public URLs are read the way cloudflared and ngrok print them', () => {
  assert.equal(parsePublicUrl('2026-11-25T10:00:00Z INF |  https://quiet-river-abc.trycloudflare.com                      |'), 'https://quiet-river-abc.trycloudflare.com');
  assert.equal(parsePublicUrl('{"lvl":"info","msg":"started tunnel","obj":"tunnels","name":"command_line","addr":"http://127.0.0.1:8787","url":"https://1a2b-3c.ngrok-free.app"}'), 'https://1a2b-3c.ngrok-free.app');
  assert.equal(parsePublicUrl('INF Starting tunnel'), undefined);
});

test('nexus tunnel cloudflared supervises the binary: URL shown in status, restarted with backoff after a crash', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const data = join(tmp.dir, 'data');
  const node = await startCli(['--data', data, '--port', '0', '--admin-port', '0', '--dev']);
  t.after(() => { node.proc.kill('SIGKILL'); });
  const counter = join(tmp.dir, 'runs');
  // First run crashes after announcing a URL; later runs stay up.
  const bin = standIn(tmp.dir, 'cloudflared', `
const fs = require('fs');
const n = fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')) + 1 : 1;
fs.writeFileSync(${JSON.stringify(counter)}, String(n));
if (!process.argv.includes('--url')) process.exit(9);
process.stderr.write('INF Requesting new quick Tunnel on trycloudflare.com...\\n');
process.stderr.write('INF |  https://run-' + n + '-words.trycloudflare.com  |\\n');
if (n === 1) setTimeout(() => process.exit(1), 200); else setInterval(() => {}, 1000);
`);
  const tunnel = spawn(process.execPath, [...cliArgs, 'tunnel', 'cloudflared', '--binary', bin, '--data', data], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { tunnel.kill('SIGKILL'); });
  let out = '';
  tunnel.stdout.on('data', (d) => { out += d; });
  const end = Date.now() + 20_000;
  while (!out.includes('https://run-2-words.trycloudflare.com')) {
    if (Date.now() > end) throw new Error(`no second URL: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(out, /"url":"https:\/\/run-1-words\.trycloudflare\.com"/);
  const state = JSON.parse(readFileSync(join(data, 'tunnel.json'), 'utf8'));
  assert.equal(state.restarts, 1);
  assert.equal(state.url, 'https://run-2-words.trycloudflare.com');
  const status = await runCli(['status', '--data', data]);
  assert.match(status.stdout, /tunnel {4}cloudflared: https:\/\/run-2-words\.trycloudflare\.com \(restarts 1\)/);
  tunnel.kill('SIGTERM');
  await new Promise((r) => tunnel.once('exit', r));
  assert.ok(!existsSync(join(data, 'tunnel.json')));
});

test('a missing tunnel binary is one clear line with the install hint, exit 2', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const r = await runCli(['tunnel', 'ngrok', '--data', tmp.dir], { PATH: tmp.dir });
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /^nexus: ngrok not found: install ngrok/);
});
