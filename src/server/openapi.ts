/**
 * OpenAPI 3.1 from the routes themselves: every public route is registered
 * through `documented()`, which records its description next to the handler,
 * and GET /openapi.json is generated from that registry — a route cannot exist
 * undocumented. Request body schemas are the ones the tests check the
 * validators against.
 */
import type { Context, Hono } from 'hono';

export type JsonSchema = Record<string, unknown>;

export interface RouteDoc {
  method: 'get' | 'post';
  /** Hono path (`:param` segments). */
  path: string;
  summary: string;
  tag: string;
  /** Needs an identity (the Sentry). */
  auth: boolean;
  query?: Record<string, { schema: JsonSchema; description: string }>;
  body?: JsonSchema;
  responses: Record<number, { description: string; schema?: JsonSchema; contentType?: string }>;
}

/** A regex for decimal integers 1 … max (no leading zero), so the schema states the exact range. */
export function rangePattern(max: string): string {
  const alts = [`[1-9][0-9]{0,${max.length - 2}}`];
  for (let i = 0; i < max.length; i++) {
    const d = Number(max[i]);
    const low = i === 0 ? 1 : 0;
    if (d > low) alts.push(`${max.slice(0, i)}[${low}-${d - 1}][0-9]{${max.length - i - 1}}`);
  }
  alts.push(max);
  return `^(?:${alts.join('|')})$`;
}

const U64_MAX = '18446744073709551615';

const decimal = { type: 'string', pattern: '^[0-9]+$', description: 'integer in minor units, as decimal digits' };
const hex32 = { type: 'string', pattern: '^[0-9a-f]{64}$' };

export const SCHEMAS: Record<string, JsonSchema> = {
  Problem: {
    type: 'object',
    required: ['type', 'title', 'status', 'code'],
    properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, code: { type: 'string', description: 'stable machine code, e.g. AMOUNT_INVALID' }, detail: { type: 'string' }, instance: { type: 'string' } },
  },
  Event: {
    type: 'object',
    additionalProperties: false,
    required: ['amount'],
    properties: {
      amount: { oneOf: [{ type: 'string', pattern: rangePattern(U64_MAX), description: '1 … 18446744073709551615 in minor units' }, { type: 'integer', minimum: 1, maximum: 9007199254740991 }] },
      beneficiary: { oneOf: [{ type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$' }, { type: 'null' }], description: 'who gets the creator share; defaults to the authenticated subject' },
      ref: { oneOf: [{ type: 'string', pattern: '^[!-~]{1,128}$' }, { type: 'null' }], description: 'client reference: the same subject + ref is booked once' },
    },
  },
  Split: { type: 'object', required: ['creator', 'pool', 'fee'], properties: { creator: decimal, pool: decimal, fee: decimal } },
  Receipt: {
    type: 'object',
    required: ['seq', 'leaf', 'amount', 'split', 'subject', 'beneficiary', 'ts', 'ref'],
    properties: { seq: { type: 'integer' }, leaf: hex32, amount: decimal, split: { $ref: '#/components/schemas/Split' }, subject: { type: 'string' }, beneficiary: { type: 'string' }, ts: { type: 'integer', description: 'ms since epoch' }, ref: { type: ['string', 'null'] }, checkpointed: { type: 'boolean', description: 'covered by a signed checkpoint yet (proofs need one)' } },
  },
  EventView: {
    allOf: [{ $ref: '#/components/schemas/Receipt' }, { type: 'object', properties: { policy: { type: 'string' }, evidence: hex32, entry: { type: 'string', description: 'the canonical (RFC 8785) bytes' }, checkpointed: { type: 'boolean' } } }],
  },
  ProofBundle: {
    type: 'object',
    required: ['entry', 'index', 'leafHash', 'auditPath', 'treeSize', 'checkpoint', 'keyName', 'publicKey', 'anchors'],
    properties: { entry: { type: 'string' }, index: { type: 'integer' }, leafHash: hex32, auditPath: { type: 'array', items: hex32 }, treeSize: { type: 'integer' }, checkpoint: { type: 'string' }, keyName: { type: 'string' }, publicKey: { type: 'string', contentEncoding: 'base64' }, anchors: { type: 'array', items: { $ref: '#/components/schemas/AnchorReceipt' } } },
  },
  AnchorReceipt: {
    type: 'object',
    properties: { size: { type: 'integer' }, chain: { type: 'string', description: 'eip155:<id> or file' }, adapter: { type: 'string' }, state: { enum: ['queued', 'submitted', 'confirmed', 'failed'] }, tx: { type: ['string', 'null'] }, block: { type: ['integer', 'null'] }, confirmations: { type: ['integer', 'null'] } },
  },
};

export const EVENT_BODY_SCHEMA: JsonSchema = {
  oneOf: [
    { $ref: '#/components/schemas/Event' },
    { type: 'object', additionalProperties: false, required: ['events'], properties: { events: { type: 'array', minItems: 1, maxItems: 1000, items: { $ref: '#/components/schemas/Event' } } } },
  ],
};

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

export class ApiDocs {
  readonly routes: RouteDoc[] = [];

  document(info: { title: string; version: string; description: string }): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.routes) {
      const oaPath = r.path.replace(/:([A-Za-z_]+)/g, '{$1}');
      const params = [
        ...[...r.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
        ...Object.entries(r.query ?? {}).map(([name, q]) => ({ name, in: 'query', required: false, description: q.description, schema: q.schema })),
      ];
      const responses: Record<string, unknown> = {};
      for (const [status, res] of Object.entries(r.responses)) {
        responses[status] = { description: res.description, ...(res.schema ? { content: { [res.contentType ?? 'application/json']: { schema: res.schema } } } : {}) };
      }
      responses.default = { description: 'error', content: { 'application/problem+json': { schema: ref('Problem') } } };
      (paths[oaPath] ??= {})[r.method] = {
        summary: r.summary,
        tags: [r.tag],
        operationId: `${r.method}${oaPath.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
        ...(params.length ? { parameters: params } : {}),
        ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
        ...(r.auth ? { security: [{ deviceSignature: [] }, { cloudflareAccess: [] }, { telegramInitData: [] }] } : {}),
        responses,
      };
    }
    return {
      openapi: '3.1.0',
      info,
      paths,
      components: {
        schemas: SCHEMAS,
        securitySchemes: {
          deviceSignature: { type: 'apiKey', in: 'header', name: 'Signature', description: 'RFC 9421 over ("@method" "@path" "content-digest") with created, nonce, keyid (did:key | did:peaq | did:io) and alg; plus Signature-Input and Content-Digest (RFC 9530)' },
          cloudflareAccess: { type: 'apiKey', in: 'header', name: 'Cf-Access-Jwt-Assertion' },
          telegramInitData: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'tma <initData>' },
        },
      },
    };
  }
}

/** Registers a route on the app and its description in the registry. */
type RouteHandler<C> = (c: C, next: () => Promise<void>) => Response | void | Promise<Response | void>;

export function documented<E extends { Variables?: object }>(app: Hono<E>, docs: ApiDocs) {
  return (doc: RouteDoc, ...handlers: Array<RouteHandler<Context<E>>>): void => {
    docs.routes.push(doc);
    (app[doc.method] as (path: string, ...h: Array<RouteHandler<Context<E>>>) => unknown)(doc.path, ...handlers);
  };
}
