// Bundles the CLI with esbuild, WASM embedded (src/runtime/assets.ts is swapped
// for a module that imports the SQLite wasm through esbuild's binary loader):
//   dist/nexus.mjs  ESM, for `npx nexus` in a checkout and for Deno
//   dist/nexus.cjs  CommonJS, the entry of the single executables (Node SEA
//                   takes one CJS file, no top-level await)
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

const common = {
  entryPoints: [join(root, 'src/cli/main.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  loader: { '.wasm': 'binary' },
  plugins: [embedAssets],
  logLevel: 'error',
  legalComments: 'none',
};

mkdirSync(join(root, 'dist'), { recursive: true });
await build({
  ...common,
  outfile: join(root, 'dist/nexus.mjs'),
  format: 'esm',
  banner: { js: "import { createRequire as __nexusCreateRequire } from 'node:module'; const require = __nexusCreateRequire(import.meta.url);" },
});
await build({
  ...common,
  outfile: join(root, 'dist/nexus.cjs'),
  format: 'cjs',
  // import.meta.url has no meaning in a CommonJS single executable; nothing on our paths needs it.
  define: { 'import.meta.url': 'undefined' },
});
console.log('bundle: dist/nexus.mjs, dist/nexus.cjs');
