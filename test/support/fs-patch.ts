/**
 * Replacing node:fs functions for the code under test (the vault's VFS calls
 * node:fs through the runtime seam): on node:fs's CommonJS object, then
 * synced to every ESM import of it.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

/** node:fs as every importer sees it once syncBuiltinESMExports() ran. */
export const nodeFs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');

/** Puts `replacements` in place of node:fs's functions of those names; returns what puts the real ones back. */
export function patchNodeFs(replacements: Partial<typeof import('node:fs')>): () => void {
  const real = Object.fromEntries(Object.keys(replacements).map((name) => [name, nodeFs[name as keyof typeof nodeFs]]));
  Object.assign(nodeFs, replacements);
  syncBuiltinESMExports();
  return () => {
    Object.assign(nodeFs, real);
    syncBuiltinESMExports();
  };
}
