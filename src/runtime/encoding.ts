/** Byte encodings used across rooms (src/log/verify.ts keeps its own: it imports nothing of ours). */
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const toBase64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Byte-for-byte equality (not constant-time: for hashes already public; secrets use timingSafeEqual). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
