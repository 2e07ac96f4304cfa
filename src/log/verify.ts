/**
 * Client-side verification of the Nexus log, importable alone (STYLE.md:
 * the verifier never imports the server): RFC 9162 §2.1 inclusion and
 * consistency proofs, C2SP signed notes and tlog checkpoints, and whole proof
 * bundles. Pure functions over bytes; SHA-256 and Ed25519 from @noble.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';

const enc = new TextEncoder();

export function leafHash(entry: Uint8Array): Uint8Array {
  const b = new Uint8Array(entry.length + 1);
  b.set(entry, 1);
  return sha256(b);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const b = new Uint8Array(65);
  b[0] = 1;
  b.set(left, 1);
  b.set(right, 33);
  return sha256(b);
}

export const emptyRoot = (): Uint8Array => sha256(new Uint8Array(0));

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or undefined when it is malformed. */
export function rootFromInclusion(index: bigint, size: bigint, leaf: Uint8Array, path: readonly Uint8Array[]): Uint8Array | undefined {
  if (index >= size || leaf.length !== 32 || path.some((p) => p.length !== 32)) return undefined;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return undefined;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : undefined;
}

export function verifyInclusion(index: number | bigint, size: number | bigint, leaf: Uint8Array, path: readonly Uint8Array[], root: Uint8Array): boolean {
  const r = rootFromInclusion(BigInt(index), BigInt(size), leaf, path);
  return r !== undefined && root.length === 32 && equal(r, root);
}

/** RFC 9162 §2.1.4.2 consistency verification. size1 = 0 is always rejected. */
export function verifyConsistency(size1: number | bigint, size2: number | bigint, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  const n1 = BigInt(size1);
  const n2 = BigInt(size2);
  if (n1 <= 0n || n1 > n2) return false;
  if (n1 === n2) return proof.length === 0 && equal(root1, root2);
  if (proof.some((p) => p.length !== 32) || root1.length !== 32 || root2.length !== 32) return false;
  let path = proof;
  if ((n1 & (n1 - 1n)) === 0n) path = [root1, ...proof];
  if (path.length === 0) return false;
  let fn = n1 - 1n;
  let sn = n2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(fr, root1) && equal(sr, root2);
}

// ----------------------------------------------------------------------------- signed notes

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string): Uint8Array | undefined => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
};

/** c2sp.org/signed-note key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). */
export function noteKeyId(name: string, publicKey: Uint8Array): Uint8Array {
  const n = enc.encode(name);
  const b = new Uint8Array(n.length + 2 + publicKey.length);
  b.set(n);
  b[n.length] = 0x0a;
  b[n.length + 1] = 0x01;
  b.set(publicKey, n.length + 2);
  return sha256(b).subarray(0, 4);
}

/** The vkey string form: name+hex8(keyID)+base64(0x01 ‖ public key). */
export function verifierKey(name: string, publicKey: Uint8Array): string {
  const id = Array.from(noteKeyId(name, publicKey), (x) => x.toString(16).padStart(2, '0')).join('');
  return `${name}+${id}+${b64(Uint8Array.of(1, ...publicKey))}`;
}

export function parseVerifierKey(vkey: string): { name: string; publicKey: Uint8Array } | undefined {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  if (!m) return undefined;
  const raw = unb64(m[3]!);
  if (!raw || raw.length !== 33 || raw[0] !== 1) return undefined;
  const publicKey = raw.subarray(1);
  return verifierKey(m[1]!, publicKey) === vkey ? { name: m[1]!, publicKey } : undefined;
}

export interface NoteSignature {
  name: string;
  keyId: Uint8Array;
  signature: Uint8Array;
}

/** Splits a signed note into its text (with final newline) and signature lines; undefined if malformed. */
export function parseNote(note: string): { text: string; signatures: NoteSignature[] } | undefined {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) return undefined;
  const text = note.slice(0, split + 1);
  const sigLines = note.slice(split + 2, -1).split('\n');
  const signatures: NoteSignature[] = [];
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) return undefined;
    const raw = unb64(m[2]!);
    if (!raw || raw.length < 5) return undefined;
    signatures.push({ name: m[1]!, keyId: raw.subarray(0, 4), signature: raw.subarray(4) });
  }
  return signatures.length > 0 ? { text, signatures } : undefined;
}

/** True when the note carries a valid Ed25519 signature by (name, publicKey). */
export function verifyNote(note: string, name: string, publicKey: Uint8Array): boolean {
  const parsed = parseNote(note);
  if (!parsed) return false;
  const id = noteKeyId(name, publicKey);
  return parsed.signatures.some((s) => {
    if (s.name !== name || !equal(s.keyId, id) || s.signature.length !== 64) return false;
    try {
      return ed25519.verify(s.signature, enc.encode(parsed.text), publicKey);
    } catch {
      return false;
    }
  });
}

export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
  /** Extension lines after the root, if any. */
  extensions: string[];
}

/** Parses a c2sp.org/tlog-checkpoint body (the note text). */
export function parseCheckpointBody(text: string): Checkpoint | undefined {
  if (!text.endsWith('\n')) return undefined;
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) return undefined;
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!origin || !/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) return undefined;
  const root = unb64(rootText);
  if (!root || root.length !== 32) return undefined;
  return { origin, size: BigInt(sizeText), root, extensions: lines.slice(3) };
}

// ----------------------------------------------------------------------------- proof bundles

export interface AnchorReceipt {
  size: number;
  chain: string;
  adapter: string;
  state: string;
  tx?: string | null;
  block?: number | null;
  confirmations?: number | null;
}

/** SPEC §3 proof bundle. */
export interface ProofBundle {
  entry: string;
  index: number;
  leafHash: string;
  auditPath: string[];
  treeSize: number;
  checkpoint: string;
  keyName: string;
  publicKey: string;
  anchors: AnchorReceipt[];
}

export interface BundleVerdict {
  ok: boolean;
  /** What failed first, when not ok. */
  error?: string;
  origin?: string;
  verifierKey?: string;
}

const hexToBytes = (h: string): Uint8Array | undefined =>
  /^([0-9a-f]{2})*$/.test(h) ? Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16)) : undefined;

/**
 * Checks a proof bundle with nothing but the bundle (and, optionally, the
 * node key the caller trusts): the entry hashes to the leaf, the leaf is in
 * the tree of the checkpoint's size, and the checkpoint is signed.
 */
export function verifyProofBundle(bundle: ProofBundle, trusted?: { name: string; publicKey: Uint8Array }): BundleVerdict {
  const fail = (error: string): BundleVerdict => ({ ok: false, error });
  if (typeof bundle !== 'object' || bundle === null) return fail('not a proof bundle');
  if (typeof bundle.entry !== 'string' || !Number.isSafeInteger(bundle.index) || !Number.isSafeInteger(bundle.treeSize) || !Array.isArray(bundle.auditPath)) return fail('bundle fields missing or of the wrong type');
  const publicKey = typeof bundle.publicKey === 'string' ? unb64(bundle.publicKey) : undefined;
  if (!publicKey || publicKey.length !== 32) return fail('publicKey is not a base64 Ed25519 key');
  if (trusted && (trusted.name !== bundle.keyName || !equal(trusted.publicKey, publicKey))) return fail('the bundle is signed by another key than the trusted one');
  const leaf = leafHash(enc.encode(bundle.entry));
  const claimed = hexToBytes(bundle.leafHash ?? '');
  if (!claimed || !equal(leaf, claimed)) return fail('leafHash does not match SHA-256(0x00 ‖ entry)');
  let seq: unknown;
  try {
    seq = (JSON.parse(bundle.entry) as { seq?: unknown }).seq;
  } catch {
    return fail('entry is not JSON');
  }
  if (seq !== bundle.index) return fail('the entry seq is not the proof index');
  const parsed = parseNote(bundle.checkpoint ?? '');
  if (!parsed) return fail('checkpoint is not a signed note');
  const cp = parseCheckpointBody(parsed.text);
  if (!cp) return fail('checkpoint body is not a tlog checkpoint');
  if (cp.size !== BigInt(bundle.treeSize)) return fail('checkpoint size differs from treeSize');
  if (!verifyNote(bundle.checkpoint, bundle.keyName, publicKey)) return fail('checkpoint signature does not verify');
  const path: Uint8Array[] = [];
  for (const h of bundle.auditPath) {
    const b = typeof h === 'string' ? hexToBytes(h) : undefined;
    if (!b || b.length !== 32) return fail('auditPath holds a non-hash');
    path.push(b);
  }
  if (!verifyInclusion(bundle.index, bundle.treeSize, leaf, path, cp.root)) return fail('the audit path does not lead to the checkpoint root');
  return { ok: true, origin: cp.origin, verifierKey: verifierKey(bundle.keyName, publicKey) };
}
