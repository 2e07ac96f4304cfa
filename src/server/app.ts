/**
 * The public HTTP API (SPEC §4) as a Hono app: ingress → sentry → brain →
 * vault. A 2xx on a write means the rows are durable; every bad input is a
 * 4xx problem+json that changed nothing.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { GroupCommitter, StorageError, receiptOf, type Arrival, type Outcome } from '../vault/group-commit.ts';
import { receiptJson, receiptsJson } from './receipt-json.ts';
import { API_SECURE_HEADERS, secureHeadersOnce } from './secure-headers.ts';
import type { StoredEntry, Vault } from '../vault/vault.ts';
import { SplitInvariantError } from '../brain/split.ts';
import { formatPolicy } from '../brain/policy.ts';
import { hotpathReady } from '../hotpath/hotpath.ts';
import { sentry, type Rejection, type SentryVariables } from '../sentry/sentry.ts';
import type { IdentityVerifier } from '../sentry/identity.ts';
import { parseEventBody, parseJson } from './event-body.ts';
import { parseLegacyAmount } from '../brain/amount.ts';
import { RateLimiter } from '../sentry/rate-limit.ts';
import type { Anchorer } from '../adapters/anchor/anchorer.ts';
import { forward, UpstreamError, type ProxyRoute } from '../gateway/proxy.ts';
import { ApiDocs, documented, EVENT_BODY_SCHEMA, ref } from './openapi.ts';
import { ApiReference } from './docs-page.tsx';
import { NotCheckpointedError, type TransparencyLog } from '../log/log.ts';
import { problem, ProblemError } from './problem.ts';

export const VERSION = '0.1.0';

export interface NodeInfo {
  origin: string;
  keyName: string;
  publicKey: string;
  /** c2sp.org/signed-note verifier key, for `nexus verify-proof --key`. */
  verifierKey: string;
}

export interface AppOptions {
  vault: Vault;
  log: TransparencyLog;
  anchors: Anchorer;
  committer: GroupCommitter;
  verifiers: readonly IdentityVerifier[];
  node: NodeInfo;
  bodyLimitBytes: number;
  peer: (c: Context) => { clientIp: string; loopback: boolean };
  onRejection?: (r: Rejection) => void;
  onError?: (e: unknown, c: Context) => void;
  /** Extra readiness condition (e.g. the data directory is writable). */
  ready?: () => boolean;
  /** Requests per second per client IP and per identity (429 + Retry-After past them). */
  rateLimits?: { perIp: number; perIdentity: number };
  /** Reverse-proxy routes, forwarded after the Sentry (SPEC §7). */
  proxy?: { routes: readonly ProxyRoute[]; key: string; timeoutMs: number };
}

type Env = { Variables: SentryVariables & { buffered?: boolean; arrival?: Arrival } };

const MAX_LIMIT = 500;
const DEFAULT_LIMIT = 50;
const SEQ = /^(0|[1-9][0-9]{0,15})$/;

function parseSeq(text: string | undefined): number | undefined {
  if (text === undefined || !SEQ.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Minor units as a two-decimal string (legacy API): exact, no floats. */
function decimal(minor: string): string {
  const padded = minor.padStart(3, '0');
  return `${padded.slice(0, -2)}.${padded.slice(-2)}`;
}

function eventView(s: StoredEntry, log: TransparencyLog) {
  const cp = log.latest();
  return {
    ...receiptOf(s.entry, s.leaf),
    policy: s.entry.policy,
    evidence: s.entry.evidence,
    entry: s.canonical,
    // Whether a signed checkpoint covers this event yet (proofs need one).
    checkpointed: cp !== undefined && s.entry.seq < cp.size,
  };
}

/** Proof bundle or a problem: the route and the admin API share this. */
export function proofResponse(c: Context, log: TransparencyLog, seq: number, sizeText: string | undefined): Response {
  let size: number | undefined;
  if (sizeText !== undefined) {
    size = parseSeq(sizeText);
    if (size === undefined) return problem(c, 'QUERY_INVALID', 'size must be a checkpoint size');
    if (!log.checkpoint(size)) return problem(c, 'NOT_FOUND', `no checkpoint of size ${size}`);
  }
  try {
    return c.json(log.proofBundle(seq, size));
  } catch (e) {
    if (e instanceof NotCheckpointedError) {
      c.header('retry-after', '1');
      return problem(c, 'NOT_CHECKPOINTED', e.message);
    }
    throw e;
  }
}

export { parseSeq };

export function checkpointView(log: TransparencyLog) {
  const cp = log.latest();
  return cp ? { size: cp.size, root: Buffer.from(cp.root).toString('hex'), ts: cp.ts } : null;
}

/** Non-admin identities see only the entries they sent or are credited by. */
function visibleTo(s: StoredEntry, subject: string): boolean {
  return s.entry.subject === subject || s.entry.beneficiary === subject;
}

export function createApp(appOptions: AppOptions): Hono<Env> {
  // The client address is worked out once per request (IP parsing, header
  // reads), however many middlewares ask for it.
  const peers = new WeakMap<Request, ReturnType<AppOptions['peer']>>();
  const peer = (c: Context) => {
    let p = peers.get(c.req.raw);
    if (!p) {
      p = appOptions.peer(c);
      peers.set(c.req.raw, p);
    }
    return p;
  };
  const options: AppOptions = { ...appOptions, peer };
  const { vault, committer } = options;
  const app = new Hono<Env>({ strict: true });

  const secure = secureHeadersOnce(API_SECURE_HEADERS);
  app.use('*', secure.middleware);

  app.onError((err, c) => {
    if (err instanceof ProblemError) return problem(c, err.code, err.detail);
    if (err instanceof StorageError) {
      options.onError?.(err, c);
      return problem(c, 'STORAGE_UNAVAILABLE');
    }
    if (err instanceof SplitInvariantError) {
      options.onError?.(err, c);
      return problem(c, 'SPLIT_INVARIANT', err.message);
    }
    options.onError?.(err, c);
    return problem(c, 'INTERNAL');
  });
  app.notFound((c) => problem(c, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`));
  const docs = new ApiDocs();
  const route = documented(app, docs);

  // --- public, unauthenticated -------------------------------------------------
  route({ method: 'get', path: '/healthz', summary: 'Liveness', tag: 'node', auth: false, responses: { 200: { description: 'alive' } } }, (c) => c.json({ status: 'ok' }));
  route({ method: 'get', path: '/readyz', summary: 'Readiness: vault writable, WASM loaded', tag: 'node', auth: false, responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } } }, (c) => {
    const checks = { vault: !committer.closed && (options.ready?.() ?? true), wasm: hotpathReady() };
    const ok = checks.vault && checks.wasm;
    return c.json({ status: ok ? 'ready' : 'not ready', checks }, ok ? 200 : 503);
  });
  route({ method: 'get', path: '/v1/node', summary: 'Origin, checkpoint key and policy of this node', tag: 'log', auth: false, responses: { 200: { description: 'node identity' } } }, (c) => c.json({ ...options.node, policy: formatPolicy(vault.policy), version: VERSION }));
  route({ method: 'get', path: '/v1/checkpoint', summary: 'The latest signed checkpoint (C2SP tlog-checkpoint)', tag: 'log', auth: false, responses: { 200: { description: 'signed note', contentType: 'text/plain', schema: { type: 'string' } } } }, (c) => {
    const cp = options.log.latest();
    if (!cp) return problem(c, 'NOT_FOUND', 'no checkpoint yet');
    return c.text(cp.note, 200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
  });
  route({ method: 'get', path: '/v1/anchors', summary: 'Anchor receipts (newest first, or of one checkpoint size)', tag: 'log', auth: false, query: { size: { schema: { type: 'integer' }, description: 'checkpoint size' } }, responses: { 200: { description: 'receipts', schema: { type: 'object', properties: { anchors: { type: 'array', items: ref('AnchorReceipt') } } } } } }, (c) => {
    const sizeText = c.req.query('size');
    if (sizeText === undefined) return c.json({ anchors: options.anchors.receipts() });
    const size = parseSeq(sizeText);
    if (size === undefined) return problem(c, 'QUERY_INVALID', 'size must be a checkpoint size');
    return c.json({ anchors: options.anchors.receipts(size) });
  });
  route({ method: 'get', path: '/v1/consistency', summary: 'RFC 9162 consistency proof between two tree sizes', tag: 'log', auth: false, query: { from: { schema: { type: 'integer', minimum: 1 }, description: 'older size' }, to: { schema: { type: 'integer' }, description: 'newer size' } }, responses: { 200: { description: 'proof', schema: { type: 'object', properties: { from: { type: 'integer' }, to: { type: 'integer' }, proof: { type: 'array', items: { type: 'string' } } } } } } }, (c) => {
    const from = parseSeq(c.req.query('from'));
    const to = parseSeq(c.req.query('to'));
    const size = options.log.tree.size;
    if (from === undefined || to === undefined || from < 1 || from > to || to > size) {
      return problem(c, 'QUERY_INVALID', `from and to must satisfy 1 <= from <= to <= ${size}`);
    }
    return c.json({ from, to, proof: options.log.consistency(from, to) });
  });

  // --- the Sentry guards everything under /v1 that is not public ----------------
  // With a Content-Length the body is read in one go (the adapter's fast
  // path, no web stream); without one, hono's streaming bodyLimit counts bytes
  // as they arrive so a chunked upload can't grow past the limit in memory.
  const tooLarge = (c: Context) => problem(c, 'BODY_TOO_LARGE', `the limit is ${options.bodyLimitBytes} bytes`);
  const streamingLimit = bodyLimit({ maxSize: options.bodyLimitBytes, onError: tooLarge });
  const readBody: MiddlewareHandler<Env> = async (c, next) => {
    const length = c.req.header('content-length');
    if (length === undefined) return streamingLimit(c, next);
    if (!/^[0-9]{1,15}$/.test(length) || Number(length) > options.bodyLimitBytes) return tooLarge(c);
    await next();
  };
  const guard = sentry({
    verifiers: options.verifiers,
    peer: options.peer,
    onRejection: options.onRejection,
    reject: (c, r) => {
      const title = r.status === 403 ? 'This identity may not do this' : r.status === 429 ? 'Too many requests' : 'The identity of this request could not be verified';
      const body = { type: `urn:nexus:problem:${r.code.toLowerCase().replaceAll('_', '-')}`, title, status: r.status, code: r.code, detail: r.message, instance: c.req.path };
      return c.body(JSON.stringify(body), r.status as ContentfulStatusCode, { 'content-type': 'application/problem+json' });
    },
  });

  const ipLimiter = new RateLimiter(options.rateLimits?.perIp ?? 200);
  const identityLimiter = new RateLimiter(options.rateLimits?.perIdentity ?? 1000);
  const limited = (c: Context, wait: number, claimed: string | null) => {
    options.onRejection?.({ time: new Date().toISOString(), route: `${c.req.method} ${c.req.path}`, code: 'RATE_LIMITED', clientIp: options.peer(c).clientIp, claimed });
    c.header('retry-after', String(wait));
    return problem(c, 'RATE_LIMITED', `retry in ${wait} s`);
  };
  const perIp: MiddlewareHandler<Env> = async (c, next) => {
    const wait = ipLimiter.take(`ip:${options.peer(c).clientIp}`);
    if (wait > 0) return limited(c, wait, null);
    await next();
  };
  const perIdentity: MiddlewareHandler<Env> = async (c, next) => {
    const subject = c.get('identity').subject;
    const wait = identityLimiter.take(subject);
    if (wait > 0) return limited(c, wait, subject);
    await next();
  };
  // The committer may hold a group back a moment for a request on its way
  // (its body being read, its signature verified) to share its fsync.
  const announce: MiddlewareHandler<Env> = async (c, next) => {
    const arrival = committer.expect();
    c.set('arrival', arrival);
    try {
      await next();
    } finally {
      arrival.cancel();
    }
  };
  const jsonBody: MiddlewareHandler<Env> = async (c, next) => {
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) return problem(c, 'UNSUPPORTED_MEDIA_TYPE');
    c.set('body', new Uint8Array(await c.req.arrayBuffer()));
    await next();
  };
  const decodeJson = (c: Context<Env>): unknown => {
    try {
      return parseJson(new TextDecoder('utf-8', { fatal: true }).decode(c.get('body')));
    } catch (e) {
      if (e instanceof ProblemError) throw e;
      throw new ProblemError('MALFORMED_JSON', 'the body is not valid UTF-8');
    }
  };

  route({ method: 'post', path: '/v1/events', summary: 'Book one event or a batch (all-or-nothing), durably', tag: 'events', auth: true, body: EVENT_BODY_SCHEMA, responses: { 201: { description: 'booked; the rows are on disk', schema: { oneOf: [ref('Receipt'), { type: 'object', properties: { receipts: { type: 'array', items: ref('Receipt') } } }] } }, 200: { description: 'every ref was booked before: the first receipts' } } }, perIp, announce, readBody, jsonBody, guard, perIdentity, async (c) => {
    const identity = c.get('identity');
    const json = decodeJson(c);
    const { events, batch } = parseEventBody(json, identity.subject, c.req.header('idempotency-key') ?? null);
    const outcome: Outcome = await c.get('arrival')!.submit({ subject: identity.subject, events, evidence: identity.evidence, nonce: identity.nonce });
    if (outcome.kind === 'conflict') {
      return problem(c, 'REF_CONFLICT', `ref "${outcome.ref}" was booked before with a different amount or beneficiary`, { index: outcome.index });
    }
    const status = outcome.kind === 'booked' ? 201 : 200;
    // A fresh booking is never covered yet; a replayed one may be by now.
    const covered = options.log.latest()?.size ?? 0;
    const first = outcome.receipts[0]!;
    const body = batch ? receiptsJson(outcome.receipts, covered) : receiptJson(first, first.seq < covered);
    return secure.respond(c, body, status, 'application/json');
  });

  const readGuard: MiddlewareHandler<Env> = async (c, next) => {
    c.set('body', new Uint8Array(0));
    await next();
  };
  const durableNonce: MiddlewareHandler<Env> = async (c, next) => {
    // A signed read's nonce is durable before the answer, like a write's.
    const nonce = c.get('identity').nonce;
    if (nonce) await committer.submit({ subject: c.get('identity').subject, events: [], evidence: new Uint8Array(0), nonce });
    await next();
  };
  app.get('/v1/*', perIp, readGuard, guard, perIdentity, durableNonce);
  app.get('/api/*', perIp, readGuard, guard, perIdentity, durableNonce);

  route({ method: 'get', path: '/v1/events/:seq', summary: 'One event (its subject or beneficiary only)', tag: 'events', auth: true, responses: { 200: { description: 'the event', schema: ref('EventView') } } }, (c) => {
    const seq = parseSeq(c.req.param('seq'));
    if (seq === undefined) return problem(c, 'SEQ_INVALID');
    const stored = vault.entry(seq);
    if (!stored || !visibleTo(stored, c.get('identity').subject)) return problem(c, 'NOT_FOUND', `no event ${seq} visible to this identity`);
    return c.json(eventView(stored, options.log));
  });

  route({ method: 'get', path: '/v1/events/:seq/proof', summary: 'Proof bundle of an event against a signed checkpoint', tag: 'log', auth: true, query: { size: { schema: { type: 'integer' }, description: 'checkpoint size (default: latest)' } }, responses: { 200: { description: 'proof bundle', schema: ref('ProofBundle') } } }, (c) => {
    const seq = parseSeq(c.req.param('seq'));
    if (seq === undefined) return problem(c, 'SEQ_INVALID');
    const stored = vault.entry(seq);
    if (!stored || !visibleTo(stored, c.get('identity').subject)) return problem(c, 'NOT_FOUND', `no event ${seq} visible to this identity`);
    return proofResponse(c, options.log, seq, c.req.query('size'));
  });

  route({ method: 'get', path: '/v1/events', summary: 'Your events, newest first, cursor-paginated', tag: 'events', auth: true, query: { cursor: { schema: { type: 'string' }, description: '`next` of the previous page' }, limit: { schema: { type: 'integer', minimum: 1, maximum: 500 }, description: 'page size (default 50)' }, subject: { schema: { type: 'string' }, description: 'must be your own subject' } }, responses: { 200: { description: 'a page', schema: { type: 'object', properties: { events: { type: 'array', items: ref('EventView') }, next: { type: ['string', 'null'] } } } } } }, (c) => {
    const subject = c.req.query('subject') ?? c.get('identity').subject;
    if (subject !== c.get('identity').subject) return problem(c, 'FORBIDDEN', 'an identity may list only its own events');
    const cursorText = c.req.query('cursor');
    const before = cursorText === undefined ? undefined : parseSeq(cursorText);
    if (cursorText !== undefined && before === undefined) return problem(c, 'QUERY_INVALID', 'cursor must be the "next" value of a previous page');
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? DEFAULT_LIMIT : parseSeq(limitText);
    if (limit === undefined || limit < 1 || limit > MAX_LIMIT) return problem(c, 'QUERY_INVALID', `limit must be 1 to ${MAX_LIMIT}`);
    const rows = vault.entries({ subject, before, limit });
    const next = rows.length === limit ? String(rows[rows.length - 1]!.entry.seq) : null;
    return c.json({ events: rows.map((r) => eventView(r, options.log)), next });
  });

  route({ method: 'get', path: '/v1/accounts/:subject', summary: 'Creator share credited to a beneficiary (your own)', tag: 'events', auth: true, responses: { 200: { description: 'account' } } }, (c) => {
    const subject = c.req.param('subject');
    if (subject !== c.get('identity').subject) return problem(c, 'FORBIDDEN', 'an identity may read only its own account');
    const a = vault.account(subject);
    return c.json({ subject, credited: a.credited.toString(), events: a.events });
  });

  route({ method: 'get', path: '/v1/summary', summary: 'Ledger totals, latest checkpoint, anchor state', tag: 'events', auth: true, responses: { 200: { description: 'summary' } } }, (c) => {
    const t = vault.totals;
    return c.json({
      entries: t.entries,
      totals: { amount: t.amount.toString(), creator: t.creator.toString(), pool: t.pool.toString(), fee: t.fee.toString() },
      policy: formatPolicy(vault.policy),
      checkpoint: checkpointView(options.log),
      anchors: options.anchors.summary(),
    });
  });

  // --- the original Nexus clients (same Sentry) ---------------------------------
  route({ method: 'post', path: '/api/execute_split', summary: 'Legacy: book {"amount": 12.34} (two decimals → minor units)', tag: 'legacy', auth: true, body: { type: 'object', additionalProperties: false, required: ['amount'], properties: { amount: { type: 'number', exclusiveMinimum: 0 } } }, responses: { 201: { description: 'booked' } } }, perIp, readBody, jsonBody, guard, perIdentity, async (c) => {
    const identity = c.get('identity');
    const json = decodeJson(c) as Record<string, unknown> | null;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ProblemError('BODY_INVALID', 'expected {"amount": 12.34}');
    for (const k of Object.keys(json)) if (k !== 'amount') throw new ProblemError('UNKNOWN_FIELD', `unknown field "${k}"`);
    const amount = parseLegacyAmount(json.amount);
    if (amount === undefined) throw new ProblemError('AMOUNT_INVALID', 'amount must be a positive number with at most two decimals');
    const outcome = await committer.submit({ subject: identity.subject, events: [{ amount, beneficiary: identity.subject, ref: null }], evidence: identity.evidence, nonce: identity.nonce });
    if (outcome.kind === 'conflict') throw new ProblemError('REF_CONFLICT');
    const r = outcome.receipts[0]!;
    return c.json({ ...r, legacy: { amount: decimal(r.amount), creator: decimal(r.split.creator), pool: decimal(r.split.pool), fee: decimal(r.split.fee) } }, 201);
  });
  route({ method: 'get', path: '/api/vault_summary', summary: 'Legacy: totals as decimals', tag: 'legacy', auth: true, responses: { 200: { description: 'summary' } } }, (c) => {
    const t = vault.totals;
    return c.json({ entries: t.entries, totals: { amount: decimal(t.amount.toString()), creator: decimal(t.creator.toString()), pool: decimal(t.pool.toString()), fee: decimal(t.fee.toString()) } });
  });
  route({ method: 'get', path: '/api/transactions', summary: 'Legacy: your transactions, cursor-paginated', tag: 'legacy', auth: true, query: { cursor: { schema: { type: 'string' }, description: '`next` of the previous page' } }, responses: { 200: { description: 'a page' } } }, (c) => {
    const cursorText = c.req.query('cursor');
    const before = cursorText === undefined ? undefined : parseSeq(cursorText);
    if (cursorText !== undefined && before === undefined) return problem(c, 'QUERY_INVALID', 'cursor must be the "next" value of a previous page');
    const rows = vault.entries({ subject: c.get('identity').subject, before, limit: DEFAULT_LIMIT });
    return c.json({ transactions: rows.map((r) => eventView(r, options.log)), next: rows.length === DEFAULT_LIMIT ? String(rows[rows.length - 1]!.entry.seq) : null });
  });

  // --- the verifying reverse proxy -------------------------------------------------
  // A signed request's body is read (bounded) so its Content-Digest can be
  // checked; any other body streams to the upstream untouched.
  const proxyBody: MiddlewareHandler<Env> = async (c, next) => {
    if (c.req.raw.headers.has('signature-input') || c.req.raw.headers.has('signature')) {
      return readBody(c, async () => {
        c.set('body', new Uint8Array(await c.req.arrayBuffer()));
        c.set('buffered', true);
        await next();
      });
    }
    c.set('body', new Uint8Array(0));
    await next();
  };
  for (const route of options.proxy?.routes ?? []) {
    const prefix = route.prefix.replace(/\/+$/, '');
    const handler: MiddlewareHandler<Env> = async (c) => {
      try {
        return await forward(c, {
          route,
          key: options.proxy!.key,
          subject: c.get('identity').subject,
          clientIp: options.peer(c).clientIp,
          ...(c.get('buffered') ? { body: c.get('body') } : {}),
          timeoutMs: options.proxy!.timeoutMs,
        });
      } catch (e) {
        if (e instanceof UpstreamError) return problem(c, e.kind === 'timeout' ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', e.message);
        throw e;
      }
    };
    for (const path of [prefix, `${prefix}/*`]) app.all(path, perIp, proxyBody, guard, perIdentity, durableNonce, handler);
  }

  app.get('/openapi.json', (c) => c.json(docs.document({ title: 'Nexus', version: VERSION, description: 'Sovereign edge gateway: verified ingest, exact splits, a durable vault and a signed Merkle log.' })));
  app.get('/docs', async (c) => {
    const nonce = crypto.randomUUID().replaceAll('-', '');
    c.header('content-security-policy', `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; frame-ancestors 'none'`);
    return c.html(`<!doctype html>${await ApiReference({ docs: docs.routes, version: VERSION, nonce })}`);
  });

  // Known paths with the wrong method: 405, not 404 (the paths come from the registry).
  for (const path of new Set(docs.routes.map((r) => r.path))) {
    app.all(path, (c) => problem(c, 'METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${c.req.path}`));
  }
  return app;
}
