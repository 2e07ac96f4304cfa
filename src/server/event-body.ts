/**
 * Strict parsing of POST /v1/events bodies: exactly the fields of SPEC §4,
 * amounts as exact integers, anything else a ProblemError with a stable code.
 */
import { parseAmount } from '../brain/amount.ts';
import type { EventRequest } from '../vault/group-commit.ts';
import { ProblemError } from './problem.ts';

export const MAX_BATCH = 1000;
const EVENT_FIELDS = new Set(['amount', 'beneficiary', 'ref']);
// Printable, no control characters, bounded: identifiers end up in canonical bytes and logs.
const IDENT = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]{1,256}$/u;
const REF = /^[\u0021-\u007e]{1,128}$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProblemError('MALFORMED_JSON');
  }
}

function parseEvent(o: unknown, subject: string, where: string): EventRequest {
  if (!isPlainObject(o)) throw new ProblemError('BODY_INVALID', `${where} must be a JSON object`);
  for (const key of Object.keys(o)) {
    if (!EVENT_FIELDS.has(key)) throw new ProblemError('UNKNOWN_FIELD', `${where} has unknown field "${key}"`);
  }
  if (!('amount' in o)) throw new ProblemError('AMOUNT_INVALID', `${where} has no amount`);
  const amount = parseAmount(o.amount);
  if (amount === undefined) throw new ProblemError('AMOUNT_INVALID', `${where}.amount must be a decimal string from "1" to "18446744073709551615" (or a safe JSON integer)`);
  let beneficiary = subject;
  if (o.beneficiary !== undefined && o.beneficiary !== null) {
    if (typeof o.beneficiary !== 'string' || !IDENT.test(o.beneficiary)) {
      throw new ProblemError('BENEFICIARY_INVALID', `${where}.beneficiary must be a string of 1 to 256 printable characters`);
    }
    beneficiary = o.beneficiary;
  }
  let ref: string | null = null;
  if (o.ref !== undefined && o.ref !== null) {
    if (typeof o.ref !== 'string' || !REF.test(o.ref)) {
      throw new ProblemError('REF_INVALID', `${where}.ref must be 1 to 128 printable ASCII characters`);
    }
    ref = o.ref;
  }
  return { amount, beneficiary, ref };
}

/**
 * Returns the events of a single-event or batch body. `idempotencyKey` (the
 * header) stands in for a single event's ref.
 */
export function parseEventBody(body: unknown, subject: string, idempotencyKey: string | null): { events: EventRequest[]; batch: boolean } {
  if (!isPlainObject(body)) throw new ProblemError('BODY_INVALID', 'the body must be a JSON object');
  if ('events' in body) {
    for (const key of Object.keys(body)) {
      if (key !== 'events') throw new ProblemError('UNKNOWN_FIELD', `a batch body takes only "events", not "${key}"`);
    }
    if (idempotencyKey !== null) throw new ProblemError('IDEMPOTENCY_KEY_INVALID', 'a batch takes a ref per event, not an Idempotency-Key header');
    const list = body.events;
    if (!Array.isArray(list) || list.length < 1 || list.length > MAX_BATCH) {
      throw new ProblemError('BATCH_INVALID', `"events" must be an array of 1 to ${MAX_BATCH} events`);
    }
    const events = list.map((e, i) => parseEvent(e, subject, `events[${i}]`));
    const refs = new Set<string>();
    for (const e of events) {
      if (e.ref === null) continue;
      if (refs.has(e.ref)) throw new ProblemError('DUPLICATE_REF', `ref "${e.ref}" appears more than once in the batch`);
      refs.add(e.ref);
    }
    return { events, batch: true };
  }
  const event = parseEvent(body, subject, 'the event');
  if (idempotencyKey !== null) {
    if (!REF.test(idempotencyKey)) throw new ProblemError('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key must be 1 to 128 printable ASCII characters');
    if (event.ref !== null && event.ref !== idempotencyKey) {
      throw new ProblemError('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key and ref differ');
    }
    event.ref = idempotencyKey;
  }
  return { events: [event], batch: false };
}
