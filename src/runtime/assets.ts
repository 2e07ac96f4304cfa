/**
 * Binary assets that travel with the program. From a checkout they are read
 * from node_modules; the esbuild bundle replaces this module with one that
 * embeds the bytes (scripts/build-bundle.mjs), so single executables and Deno
 * need no file beside them.
 */
import { createRequire } from 'node:module';
import { fs } from './fs.ts';

export function sqliteWasmBytes(): Uint8Array {
  const require = createRequire(import.meta.url);
  return fs.readFileSync(require.resolve('@journeyapps/wa-sqlite/dist/wa-sqlite.wasm'));
}
