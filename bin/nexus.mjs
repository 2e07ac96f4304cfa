#!/usr/bin/env node
// The `nexus` command in a checkout: the bundle built by `npm install`
// (scripts/build-bundle.mjs), or the TypeScript sources through tsx when the
// bundle has not been built.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'nexus.mjs');
if (existsSync(bundle) && !process.env.NEXUS_FROM_SOURCE) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
}
