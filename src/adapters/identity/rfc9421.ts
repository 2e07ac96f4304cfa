/**
 * RFC 9421 HTTP Message Signatures (request side) and RFC 9530 Content-Digest.
 * Structured fields are parsed and serialised by `structured-headers` (RFC
 * 8941/9651); this module builds the signature base from them. Shared by the
 * verifier (server) and by `nexus send` (client), so both sides agree by
 * construction and the RFC's own vectors test both.
 */
import { parseDictionary, serializeInnerList, serializeDictionary, type InnerList, type Parameters, type Item } from 'structured-headers';

/** What the base needs to know about a request. */
export interface MessageView {
  method: string;
  /** Absolute target URI, e.g. https://example.com/foo?x=1. */
  url: string;
  /** Lower-case field name → combined field value, or undefined when absent. */
  header(name: string): string | undefined;
}

export interface SignatureParams {
  created?: number;
  expires?: number;
  nonce?: string;
  keyid?: string;
  alg?: string;
  tag?: string;
}

export interface ParsedSignature {
  label: string;
  components: string[];
  params: SignatureParams;
  /** The @signature-params value as serialised from the parsed inner list. */
  paramsText: string;
  signature: Uint8Array;
}

export class SignatureFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureFormatError';
  }
}

const utf8 = new TextEncoder();
const PARAM_TYPES: Record<string, 'number' | 'string'> = { created: 'number', expires: 'number', nonce: 'string', keyid: 'string', alg: 'string', tag: 'string' };

/**
 * The value of one derived or field component (RFC 9421 §2.1, §2.2). `url`
 * gives the target URI parsed (signatureBase parses it once, and only when a
 * derived component needs it).
 */
export function componentValue(name: string, msg: MessageView, url: () => URL = () => new URL(msg.url)): string {
  switch (name) {
    case '@method':
      return msg.method.toUpperCase();
    case '@target-uri':
      return msg.url;
    case '@authority':
      return url().host.toLowerCase();
    case '@scheme':
      return url().protocol.slice(0, -1).toLowerCase();
    case '@request-target':
      return `${url().pathname}${url().search}`;
    case '@path':
      return url().pathname || '/';
    case '@query':
      return url().search || '?';
    default: {
      if (name.startsWith('@')) throw new SignatureFormatError(`unsupported derived component ${name}`);
      const value = msg.header(name);
      if (value === undefined) throw new SignatureFormatError(`covered field "${name}" is absent from the request`);
      // §2.1: leading and trailing whitespace is trimmed; obs-fold is not accepted.
      return value.trim();
    }
  }
}

/** The signature base (§2.5): one line per component, then @signature-params, LF-joined. */
export function signatureBase(components: readonly string[], paramsText: string, msg: MessageView): Uint8Array {
  let parsed: URL | undefined;
  const url = () => (parsed ??= new URL(msg.url));
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const c of components) {
    if (seen.has(c)) throw new SignatureFormatError(`component ${c} is covered twice`);
    seen.add(c);
    lines.push(`"${c}": ${componentValue(c, msg, url)}`);
  }
  lines.push(`"@signature-params": ${paramsText}`);
  return utf8.encode(lines.join('\n'));
}

function innerListOf(components: readonly string[], params: SignatureParams): InnerList {
  const p: Parameters = new Map();
  for (const key of ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'] as const) {
    if (params[key] !== undefined) p.set(key, params[key]!);
  }
  return [components.map((c): Item => [c, new Map()]), p];
}

/** Serialises the @signature-params value for the given components and parameters. */
export function serializeSignatureParams(components: readonly string[], params: SignatureParams): string {
  return serializeInnerList(innerListOf(components, params));
}

/**
 * Parses Signature-Input and Signature and returns the one signature under
 * `label` (or the only one when label is undefined). Throws SignatureFormatError.
 */
export function parseSignatureHeaders(signatureInput: string, signature: string, label?: string): ParsedSignature {
  let inputs: ReturnType<typeof parseDictionary>;
  let sigs: ReturnType<typeof parseDictionary>;
  try {
    inputs = parseDictionary(signatureInput);
    sigs = parseDictionary(signature);
  } catch (e) {
    throw new SignatureFormatError(`Signature-Input or Signature is not a structured field dictionary: ${(e as Error).message}`);
  }
  const labels = label === undefined ? [...inputs.keys()] : [label];
  if (labels.length !== 1) throw new SignatureFormatError(`expected exactly one signature, got ${labels.length}`);
  const name = labels[0]!;
  const input = inputs.get(name);
  const sig = sigs.get(name);
  if (!input || !sig) throw new SignatureFormatError(`no signature labelled "${name}" in both Signature-Input and Signature`);
  const [inner, innerParams] = input;
  if (!Array.isArray(inner)) throw new SignatureFormatError('Signature-Input member must be an inner list');
  const components = (inner as Item[]).map(([value, itemParams]) => {
    if (typeof value !== 'string' || itemParams.size > 0) throw new SignatureFormatError('covered components must be plain strings without parameters');
    if (value !== value.toLowerCase()) throw new SignatureFormatError(`component names are lower case: "${value}"`);
    return value;
  });
  const params: SignatureParams = {};
  for (const [key, value] of innerParams) {
    const type = PARAM_TYPES[key];
    if (!type) throw new SignatureFormatError(`unknown signature parameter "${key}"`);
    if (type === 'number' ? !(typeof value === 'number' && Number.isInteger(value)) : typeof value !== 'string') {
      throw new SignatureFormatError(`signature parameter "${key}" must be ${type === 'number' ? 'an integer' : 'a string'}`);
    }
    (params as Record<string, unknown>)[key] = value;
  }
  const [sigValue] = sig;
  if (!(sigValue instanceof ArrayBuffer)) throw new SignatureFormatError('Signature member must be a byte sequence');
  return { label: name, components, params, paramsText: serializeInnerList([inner as Item[], innerParams]), signature: new Uint8Array(sigValue) };
}

/** Signature-Input and Signature header values for one signature. */
export function signatureHeaders(label: string, components: readonly string[], params: SignatureParams, signature: Uint8Array): { 'signature-input': string; signature: string } {
  return {
    'signature-input': serializeDictionary(new Map([[label, innerListOf(components, params)]])),
    signature: serializeDictionary(new Map<string, Item>([[label, [signature as BufferSource, new Map()]]])),
  };
}

export type DigestAlgorithm = 'sha-256' | 'sha-512';

/** Content-Digest value for a body (RFC 9530), computed with `hash`. */
export function contentDigest(algorithm: DigestAlgorithm, digest: Uint8Array): string {
  return serializeDictionary(new Map<string, Item>([[algorithm, [digest as BufferSource, new Map()]]]));
}

/** The sha-256 member of a Content-Digest field, or undefined when absent or malformed. */
export function contentDigestMember(field: string, algorithm: DigestAlgorithm): Uint8Array | undefined {
  try {
    const member = parseDictionary(field).get(algorithm);
    if (!member || !(member[0] instanceof ArrayBuffer)) return undefined;
    return new Uint8Array(member[0]);
  } catch {
    return undefined;
  }
}
