/**
 * Device keys and their DIDs (SPEC §5.1):
 *   did:key:z6Mk…          ed25519         (multicodec 0xed01, base58btc)
 *   did:peaq:<SS58>        sr25519 | ed25519  (peaq machine IDs; signing context "substrate")
 *   did:io:0x<address>     secp256k1-keccak   (IoTeX ioID; r‖s‖v over keccak256(base), address recovered)
 *
 * Verification uses the fastest correct implementation per type (NOTES.md):
 * node:crypto for ed25519 with cached KeyObjects (3× the WASM one),
 * @polkadot/wasm-crypto for sr25519 (5× @scure/sr25519), @noble/curves for
 * secp256k1 recovery. The same module signs, for `nexus send` and tests.
 */
import { base58 } from '@scure/base';
import { blake2b } from '@noble/hashes/blake2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { nodeCrypto, randomBytes } from '../../runtime/crypto.ts';

export type KeyType = 'ed25519' | 'sr25519' | 'secp256k1';
export type SignatureAlg = 'ed25519' | 'sr25519' | 'secp256k1-keccak';

export type DeviceKey =
  | { did: string; kind: 'ed25519'; publicKey: Uint8Array; algs: readonly SignatureAlg[] }
  | { did: string; kind: 'sr25519-or-ed25519'; publicKey: Uint8Array; algs: readonly SignatureAlg[] }
  | { did: string; kind: 'secp256k1'; address: string; algs: readonly SignatureAlg[] };

export class DidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DidError';
  }
}

const ED25519_MULTICODEC = [0xed, 0x01];
const SS58_PREFIX = new TextEncoder().encode('SS58PRE');
/** peaq's SS58 format; any valid SS58 address is accepted when verifying. */
export const PEAQ_SS58_FORMAT = 42;

// ----------------------------------------------------------------------------- SS58

function ss58Checksum(prefixAndId: Uint8Array): Uint8Array {
  const data = new Uint8Array(SS58_PREFIX.length + prefixAndId.length);
  data.set(SS58_PREFIX);
  data.set(prefixAndId, SS58_PREFIX.length);
  return blake2b(data, { dkLen: 64 });
}

/** Decodes an SS58 address to its 32-byte account id (public key); throws DidError. */
export function ss58Decode(address: string): { publicKey: Uint8Array; format: number } {
  let raw: Uint8Array;
  try {
    raw = base58.decode(address);
  } catch {
    throw new DidError('SS58 address is not base58');
  }
  if (raw.length < 3) throw new DidError('SS58 address too short');
  const first = raw[0]!;
  let prefixLength: number;
  let format: number;
  if (first < 64) {
    prefixLength = 1;
    format = first;
  } else if (first < 128) {
    const second = raw[1]!;
    prefixLength = 2;
    format = ((first & 0x3f) << 2) | (second >> 6) | ((second & 0x3f) << 8);
  } else {
    throw new DidError('SS58 prefix is reserved');
  }
  if (raw.length !== prefixLength + 32 + 2) throw new DidError('SS58 address does not hold a 32-byte public key');
  const body = raw.subarray(0, prefixLength + 32);
  const sum = ss58Checksum(body);
  if (sum[0] !== raw[prefixLength + 32] || sum[1] !== raw[prefixLength + 33]) throw new DidError('SS58 checksum mismatch');
  return { publicKey: raw.slice(prefixLength, prefixLength + 32), format };
}

export function ss58Encode(publicKey: Uint8Array, format = PEAQ_SS58_FORMAT): string {
  const prefix = format < 64
    ? Uint8Array.of(format)
    : Uint8Array.of(((format & 0xfc) >> 2) | 0x40, (format >> 8) | ((format & 0x03) << 6));
  const body = new Uint8Array(prefix.length + 32);
  body.set(prefix);
  body.set(publicKey, prefix.length);
  const out = new Uint8Array(body.length + 2);
  out.set(body);
  out.set(ss58Checksum(body).subarray(0, 2), body.length);
  return base58.encode(out);
}

// ----------------------------------------------------------------------------- DIDs

export function ethAddress(uncompressedPublicKey: Uint8Array): string {
  const xy = uncompressedPublicKey.length === 65 ? uncompressedPublicKey.subarray(1) : uncompressedPublicKey;
  return `0x${Buffer.from(keccak_256(xy).subarray(12)).toString('hex')}`;
}

export function ed25519Did(publicKey: Uint8Array): string {
  return `did:key:z${base58.encode(Uint8Array.from([...ED25519_MULTICODEC, ...publicKey]))}`;
}

/** Parses a device DID; throws DidError for anything this node cannot verify. */
export function parseDid(did: string): DeviceKey {
  if (did.startsWith('did:key:z')) {
    let raw: Uint8Array;
    try {
      raw = base58.decode(did.slice('did:key:z'.length));
    } catch {
      throw new DidError('did:key is not base58btc');
    }
    if (raw.length !== 34 || raw[0] !== 0xed || raw[1] !== 0x01) throw new DidError('did:key must be an Ed25519 key (z6Mk…)');
    return { did, kind: 'ed25519', publicKey: raw.slice(2), algs: ['ed25519'] };
  }
  if (did.startsWith('did:peaq:')) {
    const { publicKey } = ss58Decode(did.slice('did:peaq:'.length));
    return { did, kind: 'sr25519-or-ed25519', publicKey, algs: ['sr25519', 'ed25519'] };
  }
  if (did.startsWith('did:io:')) {
    const address = did.slice('did:io:'.length);
    if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new DidError('did:io must carry a 0x-prefixed 20-byte address');
    return { did, kind: 'secp256k1', address: address.toLowerCase(), algs: ['secp256k1-keccak'] };
  }
  throw new DidError('unsupported DID method (did:key, did:peaq, did:io)');
}

// ----------------------------------------------------------------------------- verification

type PolkadotCrypto = typeof import('@polkadot/wasm-crypto');
let polkadot: PolkadotCrypto | undefined;
let polkadotLoading: Promise<void> | undefined;

export function sr25519Loaded(): boolean {
  return polkadot !== undefined;
}

/**
 * Loads @polkadot/wasm-crypto once (~150 ms, ~22 MB of resident WASM): only
 * when a did:peaq key is first used, or at start when one is enrolled. A node
 * of did:key and did:io devices never pays for it (edge boards are small).
 */
export function loadSr25519(): Promise<void> {
  if (polkadot) return Promise.resolve();
  polkadotLoading ??= import('@polkadot/wasm-crypto')
    .then(async (mod) => {
      await mod.waitReady();
      polkadot = mod;
    })
    .finally(() => {
      polkadotLoading = undefined;
    });
  return polkadotLoading;
}

const ed25519KeyCache = new Map<string, nodeCrypto.KeyObject>();
const KEY_CACHE_MAX = 10_000;

function ed25519KeyObject(publicKey: Uint8Array): nodeCrypto.KeyObject {
  const id = Buffer.from(publicKey).toString('base64url');
  let key = ed25519KeyCache.get(id);
  if (!key) {
    key = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id }, format: 'jwk' });
    if (ed25519KeyCache.size >= KEY_CACHE_MAX) ed25519KeyCache.delete(ed25519KeyCache.keys().next().value!);
    ed25519KeyCache.set(id, key);
  }
  return key;
}

/**
 * Ed25519 (RFC 8032) on libuv's thread pool: at thousands of signed requests
 * a second the verify is the biggest single cost, and off the event loop it
 * runs beside HTTP parsing and the vault instead of in front of them.
 */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (signature.length !== 64 || publicKey.length !== 32) return Promise.resolve(false);
  let key: nodeCrypto.KeyObject;
  try {
    key = ed25519KeyObject(publicKey);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    try {
      nodeCrypto.verify(null, message, key, signature, (error, ok) => resolve(!error && ok));
    } catch {
      resolve(false);
    }
  });
}

export async function verifySr25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if (!polkadot) await loadSr25519();
  try {
    return polkadot!.sr25519Verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

/**
 * Recovers the signer's address from r‖s‖v over a 32-byte hash; v may be 27/28
 * or 0/1. Returns undefined for a malformed or unrecoverable signature.
 */
export function recoverAddress(hash: Uint8Array, signature: Uint8Array): string | undefined {
  if (signature.length !== 65 || hash.length !== 32) return undefined;
  const v = signature[64]!;
  const recovery = v >= 27 ? v - 27 : v;
  if (recovery !== 0 && recovery !== 1) return undefined;
  try {
    const sig = secp256k1.Signature.fromBytes(signature.subarray(0, 64), 'compact').addRecoveryBit(recovery);
    return ethAddress(sig.recoverPublicKey(hash).toBytes(false));
  } catch {
    return undefined;
  }
}

/** The address that signed keccak256(message) (raw keccak, not EIP-191). */
export function recoverKeccakSigner(message: Uint8Array, signature: Uint8Array): string | undefined {
  return recoverAddress(keccak_256(message), signature);
}

/** True when `signature` by the DID's key over `message` verifies under `alg`. */
export async function verifyDeviceSignature(key: DeviceKey, alg: SignatureAlg, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (!key.algs.includes(alg)) return false;
  if (key.kind === 'secp256k1') return recoverKeccakSigner(message, signature) === key.address;
  return alg === 'sr25519' ? verifySr25519(key.publicKey, message, signature) : verifyEd25519(key.publicKey, message, signature);
}

// ----------------------------------------------------------------------------- key files and signing

/** The device key file of `nexus keygen`: JSON {type, did, secret (hex seed / private key)}. */
export interface KeyFile {
  type: KeyType;
  did: string;
  secret: string;
}

export async function generateKey(type: KeyType): Promise<KeyFile> {
  const seed = randomBytes(32);
  return keyFromSecret(type, Buffer.from(seed).toString('hex'));
}

export async function keyFromSecret(type: KeyType, secretHex: string): Promise<KeyFile> {
  const seed = new Uint8Array(Buffer.from(secretHex, 'hex'));
  if (seed.length !== 32) throw new DidError('a key secret is 32 bytes of hex');
  if (type === 'ed25519') {
    return { type, did: ed25519Did(ed25519PublicKey(seed)), secret: secretHex };
  }
  if (type === 'sr25519') {
    await loadSr25519();
    const pair = polkadot!.sr25519KeypairFromSeed(seed);
    return { type, did: `did:peaq:${ss58Encode(pair.slice(64))}`, secret: secretHex };
  }
  if (type === 'secp256k1') {
    return { type, did: `did:io:${ethAddress(secp256k1.getPublicKey(seed, false))}`, secret: secretHex };
  }
  throw new DidError(`unknown key type ${String(type)}`);
}

function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  const priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const spki = nodeCrypto.createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

export function algForKey(type: KeyType): SignatureAlg {
  return type === 'ed25519' ? 'ed25519' : type === 'sr25519' ? 'sr25519' : 'secp256k1-keccak';
}

const signingKeys = new Map<string, nodeCrypto.KeyObject | Uint8Array>();

/** Signs a message with a key file's secret under its type's algorithm. */
export async function signWithKey(key: KeyFile, message: Uint8Array): Promise<Uint8Array> {
  const seed = new Uint8Array(Buffer.from(key.secret, 'hex'));
  const cacheKey = `${key.type}:${key.secret}`;
  if (key.type === 'ed25519') {
    let priv = signingKeys.get(cacheKey) as nodeCrypto.KeyObject | undefined;
    if (!priv) {
      priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
      signingKeys.set(cacheKey, priv);
    }
    return new Uint8Array(nodeCrypto.sign(null, message, priv));
  }
  if (key.type === 'sr25519') {
    await loadSr25519();
    let pair = signingKeys.get(cacheKey) as Uint8Array | undefined;
    if (!pair) {
      pair = polkadot!.sr25519KeypairFromSeed(seed);
      signingKeys.set(cacheKey, pair);
    }
    return polkadot!.sr25519Sign(pair.slice(64), pair.slice(0, 64), message);
  }
  const rec = secp256k1.sign(keccak_256(message), seed, { prehash: false, format: 'recovered' });
  const out = new Uint8Array(65);
  out.set(rec.subarray(1), 0);
  out[64] = 27 + rec[0]!;
  return out;
}

export function parseKeyFile(text: string): KeyFile {
  const o = JSON.parse(text) as Partial<KeyFile>;
  if ((o.type !== 'ed25519' && o.type !== 'sr25519' && o.type !== 'secp256k1') || typeof o.did !== 'string' || typeof o.secret !== 'string' || !/^[0-9a-f]{64}$/i.test(o.secret)) {
    throw new DidError('not a nexus key file ({"type","did","secret"})');
  }
  return o as KeyFile;
}
