// Bundles the CLI into dist/nexus.mjs (ESM, for `npx nexus` and Deno) with the
// SQLite WASM embedded: src/runtime/assets.ts is swapped for a module that
// imports the bytes through esbuild's binary loader.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const sqliteWasm = require.resolve('@journeyapps/wa-sqlite/dist/wa-sqlite.wasm');

const embedAssets = {
  name: 'embed-assets',
  setup(b) {
    b.onResolve({ filter: /runtime\/assets\.ts$/ }, () => ({ path: 'nexus-assets', namespace: 'nexus-assets' }));
    b.onLoad({ filter: /.*/, namespace: 'nexus-assets' }, () => ({
      contents: `import bytes from ${JSON.stringify(sqliteWasm)};\nexport function sqliteWasmBytes() { return bytes; }\n`,
      loader: 'js',
      resolveDir: root,
    }));
  },
};

mkdirSync(join(root, 'dist'), { recursive: true });
await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: join(root, 'dist/nexus.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  loader: { '.wasm': 'binary' },
  plugins: [embedAssets],
  banner: { js: "import { createRequire as __nexusCreateRequire } from 'node:module'; const require = __nexusCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
console.log('bundle: dist/nexus.mjs');
