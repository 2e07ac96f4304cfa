/** Byte encodings used across rooms (src/log/verify.ts keeps its own: it imports nothing of ours). */
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const toBase64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
