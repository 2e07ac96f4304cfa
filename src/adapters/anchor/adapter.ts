/**
 * Anchor adapters (SPEC §6): put a checkpoint's hash on a chain (or a file),
 * follow it to confirmation, and re-read it later for the audit. Every
 * adapter shares this small interface; the Anchorer drives them.
 */
import { sha256 } from '../../runtime/crypto.ts';

export interface CheckpointRef {
  size: number;
  /** The signed note (body + signature lines). */
  note: string;
}

/** What `anchor` sent; persisted so confirmation survives a restart. */
export interface Submission {
  tx: string | null;
  nonce?: number | null;
  /** Some adapters (file) are final at once. */
  confirmed?: { block: number | null; confirmations: number };
}

export type Confirmation =
  | { state: 'pending'; stuck?: boolean }
  | { state: 'confirmed'; block: number | null; confirmations: number }
  | { state: 'failed'; reason: string };

export interface AnchorReceiptRow {
  size: number;
  chain: string;
  adapter: string;
  state: 'queued' | 'submitted' | 'confirmed' | 'failed';
  tx: string | null;
  block: number | null;
  confirmations: number | null;
  nonce: number | null;
  attempts: number;
  error: string | null;
}

export interface AnchorAdapter {
  /** CAIP-2 chain id (eip155:<id>) or "file". */
  readonly chain: string;
  /** Adapter family: "evm" or "file". */
  readonly adapter: string;
  anchor(cp: CheckpointRef, previous?: AnchorReceiptRow): Promise<Submission>;
  confirm(row: AnchorReceiptRow): Promise<Confirmation>;
  /** Re-reads the receipt from the chain (or file) and checks the payload. */
  verify(row: AnchorReceiptRow, cp: CheckpointRef): Promise<boolean>;
}

export class AnchorError extends Error {
  constructor(message: string, readonly permanent = false) {
    super(message);
    this.name = 'AnchorError';
  }
}

/** The checkpoint body: the note text up to and including the newline ending its last body line. */
export function checkpointBodyOf(note: string): string {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new AnchorError('not a signed note', true);
  return note.slice(0, split + 1);
}

/** "NXS1" ‖ SHA-256(checkpoint body) ‖ tree size (u64 big-endian): 40 bytes. */
export function anchorPayload(cp: CheckpointRef): Uint8Array {
  const out = new Uint8Array(40);
  out.set(new TextEncoder().encode('NXS1'));
  out.set(sha256(checkpointBodyOf(cp.note)), 4);
  new DataView(out.buffer).setBigUint64(32, BigInt(cp.size), false);
  return out;
}

export const toHex = (b: Uint8Array): `0x${string}` => `0x${Buffer.from(b).toString('hex')}`;
