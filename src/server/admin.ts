/**
 * The admin listener (loopback by default): everything on it needs the bearer
 * token from admin.token, compared in constant time.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import { randomBytes, sha256, timingSafeEqual } from '../runtime/crypto.ts';
import { Dashboard, type DashboardData } from '../dashboard/page.tsx';
import { problem } from './problem.ts';
import { parseJson } from './event-body.ts';
import { parseDid } from '../adapters/identity/keys.ts';
import type { Vault } from '../vault/vault.ts';
import type { TransparencyLog } from '../log/log.ts';
import type { RejectionLog } from '../telemetry/rejections.ts';
import type { Anchorer } from '../adapters/anchor/anchorer.ts';
import { checkpointView, parseSeq, proofResponse } from './app.ts';

const SESSION_COOKIE = 'nexus_session';
const SESSION_TTL_MS = 12 * 3600_000;

/** Dashboard sessions: random ids in memory (a restart logs everyone out). */
class Sessions {
  readonly #ids = new Map<string, number>();

  create(): string {
    const id = Buffer.from(randomBytes(32)).toString('base64url');
    this.#ids.set(id, Date.now() + SESSION_TTL_MS);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (!id) return false;
    const until = this.#ids.get(id);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.#ids.delete(id);
      return false;
    }
    return true;
  }
}

/** Constant-time check of a presented admin token (hashing makes it length-independent). */
function tokenMatches(presented: string, expected: Uint8Array): boolean {
  return timingSafeEqual(sha256(presented), expected);
}

/** Bearer token, or the dashboard's session cookie. */
export const adminAuth = (token: string, sessions?: Sessions): MiddlewareHandler => {
  const expected = sha256(token);
  return async function adminAuth(c, next) {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const ok = m ? tokenMatches(m[1]!, expected) : sessions?.valid(getCookie(c, SESSION_COOKIE)) === true;
    if (!ok) return problem(c, 'UNAUTHENTICATED', 'the admin API needs "Authorization: Bearer <admin.token>"');
    await next();
  };
};

/** One export line: the canonical entry plus its leaf hash (JSONL). */
export function exportLine(r: { seq: number; canonical: string; leaf: Uint8Array }): string {
  return `{"seq":${r.seq},"leaf":"${Buffer.from(r.leaf).toString('hex')}","entry":${r.canonical}}`;
}

function* takeRows(vault: Vault, from: number, n: number) {
  let i = 0;
  for (const row of vault.scan(from, n)) {
    if (i++ >= n) return;
    yield row;
  }
}

function dashboardData(o: AdminOptions): DashboardData {
  const t = o.vault.totals;
  return {
    origin: o.log.origin,
    totals: { entries: t.entries, amount: t.amount.toString(), creator: t.creator.toString(), pool: t.pool.toString(), fee: t.fee.toString() },
    events: o.vault.entries({ limit: 20 }).map((s) => ({
      seq: s.entry.seq, ts: s.entry.ts, subject: s.entry.subject, beneficiary: s.entry.beneficiary, amount: s.entry.amount.toString(),
      creator: s.entry.split.creator.toString(), pool: s.entry.split.pool.toString(), fee: s.entry.split.fee.toString(),
    })),
    checkpoints: o.log.checkpoints(Number.MAX_SAFE_INTEGER, 10).map((cp) => ({
      size: cp.size, ts: cp.ts, root: Buffer.from(cp.root).toString('hex'),
      anchors: o.anchors.receipts(cp.size).map((a) => ({ chain: a.chain, state: a.state, tx: a.tx ?? null })),
    })),
    rejections: o.rejections.list(50),
    rejectionsTotal: o.rejections.total,
  };
}

export interface AdminOptions {
  token: string;
  vault: Vault;
  log: TransparencyLog;
  anchors: Anchorer;
  rejections: RejectionLog;
  metrics: () => Promise<{ text: string; contentType: string }>;
  onDevicesChanged: () => void;
  status: () => Record<string, unknown>;
  shutdown: () => void;
}

const LABEL = /^[^\u0000-\u001f\u007f]{1,128}$/;

export function createAdminApp(options: AdminOptions): Hono {
  const app = new Hono({ strict: true });
  app.use('*', secureHeaders());
  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  // The dashboard: GET /?token=… logs a browser in once (HttpOnly, SameSite=Strict cookie).
  const sessions = new Sessions();
  const expected = sha256(options.token);
  app.get('/', async (c) => {
    const presented = c.req.query('token');
    if (presented !== undefined) {
      if (!tokenMatches(presented, expected)) return c.html('<!doctype html><title>Nexus</title><p>Wrong admin token.</p>', 401);
      setCookie(c, SESSION_COOKIE, sessions.create(), { httpOnly: true, sameSite: 'Strict', path: '/', maxAge: SESSION_TTL_MS / 1000, secure: new URL(c.req.url).protocol === 'https:' });
      return c.redirect('/', 302);
    }
    if (!sessions.valid(getCookie(c, SESSION_COOKIE))) {
      return c.html('<!doctype html><title>Nexus</title><p>Log in once with <code>/?token=&lt;admin.token&gt;</code> (the file in the data directory).</p>', 401);
    }
    const nonce = Buffer.from(randomBytes(16)).toString('base64');
    c.header('content-security-policy', `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
    c.header('cache-control', 'no-store');
    return c.html(`<!doctype html>${await Dashboard({ data: dashboardData(options), nonce })}`);
  });
  app.use('*', adminAuth(options.token, sessions));
  app.get('/events/rejections', (c) => streamSSE(c, async (stream) => {
    const unsubscribe = options.rejections.subscribe((r) => void stream.writeSSE({ event: 'rejection', data: JSON.stringify(r) }));
    const heartbeat = setInterval(() => void stream.writeSSE({ event: 'ping', data: '' }), 15_000);
    await new Promise<void>((resolve) => stream.onAbort(resolve));
    clearInterval(heartbeat);
    unsubscribe();
  }));
  app.get('/v1/admin/dashboard', (c) => c.json(dashboardData(options)));
  app.get('/v1/admin/status', (c) => c.json(options.status()));

  app.post('/v1/admin/shutdown', (c) => {
    setTimeout(options.shutdown, 10);
    return c.json({ stopping: true }, 202);
  });
  app.get('/v1/admin/export', (c) => {
    const from = parseSeq(c.req.query('from') ?? '0') ?? 0;
    const vault = options.vault;
    const enc = new TextEncoder();
    let next = from;
    // Chunks of 2,048 rows with a turn of the event loop between them, so ingest is never held up.
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const rows = [...takeRows(vault, next, 2048)];
        if (rows.length === 0) {
          controller.close();
          return;
        }
        next = rows[rows.length - 1]!.seq + 1;
        controller.enqueue(enc.encode(rows.map((r) => `${exportLine(r)}\n`).join('')));
        await new Promise((r) => setTimeout(r, 0));
      },
    });
    return c.body(stream, 200, { 'content-type': 'application/x-ndjson' });
  });
  app.get('/metrics', async (c) => {
    const m = await options.metrics();
    return c.body(m.text, 200, { 'content-type': m.contentType });
  });
  app.get('/v1/admin/anchors', (c) => c.json({ anchors: options.anchors.rows() }));
  app.post('/v1/admin/anchors/retry', async (c) => {
    const retried = options.anchors.retryFailed();
    void options.anchors.tick();
    return c.json({ retried });
  });
  app.get('/v1/admin/rejections', (c) => {
    const limit = Math.min(1000, Math.max(1, Number(c.req.query('limit') ?? 100) || 100));
    return c.json({ total: options.rejections.total, rejections: options.rejections.list(limit) });
  });
  app.get('/v1/admin/events/:seq/proof', (c) => {
    const seq = parseSeq(c.req.param('seq'));
    if (seq === undefined || !options.vault.entry(seq)) return problem(c, 'NOT_FOUND', 'no such event');
    return proofResponse(c, options.log, seq, c.req.query('size'));
  });
  app.post('/v1/admin/checkpoint', async (c) => {
    await options.log.cutInBackground();
    return c.json(checkpointView(options.log));
  });
  app.get('/v1/admin/devices', (c) => c.json({ devices: options.vault.devices() }));
  app.post('/v1/admin/devices', async (c) => {
    if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) return problem(c, 'UNSUPPORTED_MEDIA_TYPE');
    const body = parseJson(await c.req.text()) as Record<string, unknown> | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return problem(c, 'BODY_INVALID', 'expected {"did": "…", "label"?: "…"}');
    for (const k of Object.keys(body)) if (k !== 'did' && k !== 'label') return problem(c, 'UNKNOWN_FIELD', `unknown field "${k}"`);
    if (typeof body.did !== 'string') return problem(c, 'DID_INVALID', 'did must be a string');
    try {
      parseDid(body.did);
    } catch (e) {
      return problem(c, 'DID_INVALID', (e as Error).message);
    }
    const label = body.label === undefined || body.label === null ? null : body.label;
    if (label !== null && (typeof label !== 'string' || !LABEL.test(label))) return problem(c, 'BODY_INVALID', 'label must be 1 to 128 printable characters');
    const added = options.vault.addDevice(body.did, label as string | null);
    options.onDevicesChanged();
    const device = options.vault.devices().find((d) => d.did === body.did);
    return c.json({ device, created: added }, added ? 201 : 200);
  });
  app.delete('/v1/admin/devices/:did', (c) => {
    const did = decodeURIComponent(c.req.param('did'));
    if (!options.vault.removeDevice(did)) return problem(c, 'NOT_FOUND', `device ${did} is not enrolled`);
    options.onDevicesChanged();
    return c.body(null, 204);
  });
  app.notFound((c) => problem(c, 'NOT_FOUND'));
  return app;
}
