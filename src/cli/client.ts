/**
 * Client side of the node: the reference signer of SPEC §5.1 (what `nexus
 * send` does and device makers copy) and the admin API client the `device`,
 * `anchor` and `status` commands use.
 */
import { contentDigest, signatureBase, serializeSignatureParams, signatureHeaders } from '../adapters/identity/rfc9421.ts';
import { algForKey, signWithKey, type KeyFile } from '../adapters/identity/keys.ts';
import { REQUIRED_COMPONENTS } from '../adapters/identity/signature.ts';
import { randomBytes, sha256 } from '../runtime/crypto.ts';
import { fs, path } from '../runtime/fs.ts';
import type { DataDir } from '../config/datadir.ts';

/** Headers that sign a request per SPEC §5.1: RFC 9421 over @method, @path, content-digest. */
export async function signRequest(key: KeyFile, method: string, url: string, body: Uint8Array, now = Date.now()): Promise<Record<string, string>> {
  const digest = contentDigest('sha-256', sha256(body));
  const params = {
    created: Math.floor(now / 1000),
    nonce: Buffer.from(randomBytes(16)).toString('base64url'),
    keyid: key.did,
    alg: algForKey(key.type),
  };
  const components = [...REQUIRED_COMPONENTS];
  const paramsText = serializeSignatureParams(components, params);
  const headers: Record<string, string> = { 'content-digest': digest };
  const base = signatureBase(components, paramsText, { method, url, header: (n) => headers[n] });
  const signature = await signWithKey(key, base);
  return { ...headers, ...signatureHeaders('sig1', components, params, signature) };
}

/** Sends a signed request with a JSON body (or none). */
export async function signedFetch(key: KeyFile, method: string, url: string, json?: unknown): Promise<Response> {
  const body = json === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(json));
  const headers = await signRequest(key, method, url, body);
  if (json !== undefined) headers['content-type'] = 'application/json';
  return fetch(url, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body });
}

/** Where a running node listens, written by `nexus start` into the data directory. */
export interface RuntimeInfo {
  pid: number;
  host: string;
  port: number;
  adminHost: string;
  adminPort: number;
  startedAt: string;
}

export function runtimeFile(d: DataDir): string {
  return path.join(d.dir, 'node.json');
}

export function readRuntime(d: DataDir): RuntimeInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(runtimeFile(d), 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export function publicUrl(r: RuntimeInfo): string {
  return `http://${hostForUrl(r.host)}:${r.port}`;
}

export function adminUrl(r: RuntimeInfo): string {
  return `http://${hostForUrl(r.adminHost)}:${r.adminPort}`;
}
