/** Loads an official vector file from ../shared/vectors (beside the checkout). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'vectors');

export function loadVectors<T = Record<string, unknown>>(name: string): { cases: T[]; [k: string]: unknown } {
  return JSON.parse(readFileSync(join(dir, name), 'utf8'));
}
