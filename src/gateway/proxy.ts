/**
 * The verifying reverse proxy (SPEC §7): `[[routes]]` prefix → upstream,
 * forwarded only after the Sentry accepted the request. Client-sent X-Nexus-*
 * headers are dropped; the upstream gets X-Nexus-Subject and
 * X-Nexus-Attestation: t=<unix>,sig=<base64 HMAC-SHA256(proxy key,
 * "<t>\n<METHOD>\n<path>\n<subject>")>, so it can check the request came
 * through this node. Bodies stream both ways (a signed request's body is read
 * first: its digest must be checked). Built on Hono's proxy helper.
 */
import { proxy } from 'hono/proxy';
import type { Context } from 'hono';
import { nodeCrypto } from '../runtime/crypto.ts';

export interface ProxyRoute {
  prefix: string;
  upstream: string;
  stripPrefix: boolean;
  timeoutMs?: number;
}

/** The attestation header value for a forwarded request. */
export function attestation(key: string, t: number, method: string, path: string, subject: string): string {
  const sig = nodeCrypto.createHmac('sha256', key).update(`${t}\n${method}\n${path}\n${subject}`).digest('base64');
  return `t=${t},sig=${sig}`;
}

export class UpstreamError extends Error {
  constructor(readonly kind: 'timeout' | 'unavailable', message: string) {
    super(message);
  }
}

/** Does `path` fall under `prefix` (the prefix itself or below it)? */
export function routeMatches(prefix: string, path: string): boolean {
  const p = prefix.replace(/\/+$/, '');
  return path === p || path.startsWith(`${p}/`);
}

export interface ForwardOptions {
  route: ProxyRoute;
  key: string;
  subject: string;
  clientIp: string;
  /** The request body when it was read for the Sentry; otherwise the request streams through. */
  body?: Uint8Array;
  /** Time allowed until the upstream sends its response headers. */
  timeoutMs: number;
}

export async function forward(c: Context, o: ForwardOptions): Promise<Response> {
  const incoming = new URL(c.req.url);
  const base = new URL(o.route.upstream);
  const prefix = o.route.prefix.replace(/\/+$/, '');
  const rest = o.route.stripPrefix ? incoming.pathname.slice(prefix.length) || '/' : incoming.pathname;
  const target = new URL(base);
  target.pathname = `${base.pathname.replace(/\/+$/, '')}${rest.startsWith('/') ? rest : `/${rest}`}`;
  target.search = incoming.search;

  const headers = new Headers();
  for (const [name, value] of c.req.raw.headers) {
    if (name.startsWith('x-nexus-') || name === 'host') continue;
    headers.set(name, value);
  }
  const t = Math.floor(Date.now() / 1000);
  headers.set('x-nexus-subject', o.subject);
  headers.set('x-nexus-attestation', attestation(o.key, t, c.req.method, target.pathname, o.subject));
  const prior = headers.get('x-forwarded-for');
  headers.set('x-forwarded-for', prior ? `${prior}, ${o.clientIp}` : o.clientIp);
  headers.set('x-forwarded-host', incoming.host);
  headers.set('x-forwarded-proto', incoming.protocol.replace(':', ''));

  const hasBody = c.req.method !== 'GET' && c.req.method !== 'HEAD';
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new UpstreamError('timeout', 'upstream timed out')), (o.route.timeoutMs ?? o.timeoutMs));
  try {
    return await proxy(target, {
      method: c.req.method,
      headers,
      body: hasBody ? (o.body ?? c.req.raw.body) : undefined,
      ...(hasBody && !o.body ? { duplex: 'half' } : {}),
      signal: controller.signal,
    } as RequestInit);
  } catch (e) {
    if (controller.signal.aborted) throw new UpstreamError('timeout', `${o.route.upstream} did not answer within ${(o.route.timeoutMs ?? o.timeoutMs)} ms`);
    throw new UpstreamError('unavailable', `${o.route.upstream} is unreachable`);
  } finally {
    clearTimeout(timer);
  }
}
