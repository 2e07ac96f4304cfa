/**
 * Every error a client sees is an RFC 9457 problem+json with a stable `code`,
 * created here and nowhere else.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export const PROBLEMS = {
  MALFORMED_JSON: [400, 'The body is not valid JSON'],
  BODY_INVALID: [400, 'The body does not have the expected shape'],
  UNKNOWN_FIELD: [400, 'The body has a field this endpoint does not take'],
  AMOUNT_INVALID: [400, 'The amount is not an integer from 1 to 2^64-1 in minor units'],
  BENEFICIARY_INVALID: [400, 'The beneficiary is not a valid identifier'],
  REF_INVALID: [400, 'The ref is not a valid client reference'],
  DUPLICATE_REF: [400, 'The same ref appears twice in one batch'],
  BATCH_INVALID: [400, 'The batch must hold 1 to 1000 events'],
  IDEMPOTENCY_KEY_INVALID: [400, 'The Idempotency-Key header is not usable here'],
  QUERY_INVALID: [400, 'A query parameter is invalid'],
  DID_INVALID: [400, 'The DID is not one this node can verify (did:key, did:peaq, did:io)'],
  SEQ_INVALID: [400, 'The sequence number is not a non-negative integer'],
  UNAUTHENTICATED: [401, 'No identity could be established for this request'],
  FORBIDDEN: [403, 'This identity may not access that resource'],
  NOT_FOUND: [404, 'No such resource'],
  METHOD_NOT_ALLOWED: [405, 'This method is not allowed on this resource'],
  NOT_CHECKPOINTED: [409, 'The event is not covered by a signed checkpoint yet; retry shortly'],
  REF_CONFLICT: [409, 'This ref was already booked with a different amount or beneficiary'],
  BODY_TOO_LARGE: [413, 'The body is larger than this node accepts'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'The body must be application/json'],
  RATE_LIMITED: [429, 'Too many requests'],
  SPLIT_INVARIANT: [500, 'The split invariant failed; nothing was written'],
  UPSTREAM_UNAVAILABLE: [502, 'The upstream service of this route is unreachable'],
  UPSTREAM_TIMEOUT: [504, 'The upstream service of this route did not answer in time'],
  INTERNAL: [500, 'The node failed while handling this request'],
  STORAGE_UNAVAILABLE: [503, 'The vault could not durably write; nothing was acknowledged'],
} as const satisfies Record<string, readonly [number, string]>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail?: string;
  instance?: string;
  [extra: string]: unknown;
}

export function problemBody(code: ProblemCode, detail?: string, extra: Record<string, unknown> = {}): ProblemBody {
  const [status, title] = PROBLEMS[code];
  return { type: `urn:nexus:problem:${code.toLowerCase().replaceAll('_', '-')}`, title, status, code, ...(detail ? { detail } : {}), ...extra };
}

/** A problem+json Response (for code paths outside a Hono context). */
export function problemResponse(code: ProblemCode, detail?: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  const body = problemBody(code, detail, extra);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
}

export function problem(c: Context, code: ProblemCode, detail?: string, extra: Record<string, unknown> = {}): Response {
  const body = problemBody(code, detail, { instance: c.req.path, ...extra });
  return c.body(JSON.stringify(body), body.status as ContentfulStatusCode, { 'content-type': 'application/problem+json' });
}

/** Thrown by validators; the app turns it into problem+json. */
export class ProblemError extends Error {
  constructor(readonly code: ProblemCode, readonly detail?: string) {
    super(detail ?? PROBLEMS[code][1]);
    this.name = 'ProblemError';
  }
}
