/**
 * hono's secureHeaders, with a fast path for the answers the node sends most.
 *
 * The middleware sets its dozen headers one by one on each answer's Headers
 * object, and the Node adapter then copies them back out, sorted, into the
 * plain record writeHead takes: in the node's profile under signed single
 * events, ~5.7 KB of the ~54 KB allocated per request, and several µs of
 * the event loop. An answer built by `respond()` carries the same headers
 * from the start, as the plain record the adapter passes straight through;
 * the middleware leaves those alone and runs the library's own code on
 * every other answer.
 *
 * The values are the library's: taken once by running it on an empty answer.
 * That needs options without per-request parts (a CSP nonce callback).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/** The library's options (it does not export their type), less the CSP ones that may vary per request. */
type StaticOptions = Omit<NonNullable<Parameters<typeof secureHeaders>[0]>, 'contentSecurityPolicy' | 'contentSecurityPolicyReportOnly'>;

export interface SecureHeaders {
  middleware: MiddlewareHandler;
  /** An answer that already carries the headers (the library's own until they are known). */
  respond(c: Context, body: string, status: 200 | 201, contentType: string): Response;
}

/** The public API's options: its answers may be read by its own origin only. */
export const API_SECURE_HEADERS: StaticOptions = { crossOriginResourcePolicy: 'same-origin' };

const noNext = async () => {};

export function secureHeadersOnce(options: StaticOptions = {}): SecureHeaders {
  const library = secureHeaders(options);
  const secured = new WeakSet<Response>();
  let known: Record<string, string> | undefined;
  // One record per content type, shared by every answer: building it took
  // ~1.5 µs an answer. Neither the adapter nor writeHead changes it; frozen,
  // so a version that did would fail loudly, not leak headers between answers.
  const records = new Map<string, Record<string, string>>();
  const headers = new Headers();
  void library({ res: { headers } } as unknown as Context, noNext).then(() => {
    known = Object.fromEntries(headers);
  });
  return {
    middleware: async (c, next) => {
      await next();
      if (!secured.has(c.res)) await library(c, noNext);
    },
    respond(c, body, status, contentType) {
      if (!known) return c.body(body, status, { 'content-type': contentType });
      let record = records.get(contentType);
      if (!record) records.set(contentType, (record = Object.freeze({ ...known, 'content-type': contentType })));
      const res = new Response(body, { status, headers: record });
      secured.add(res);
      return res;
    },
  };
}
