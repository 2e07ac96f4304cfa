/**
 * The ledger entry and its canonical bytes (SPEC §3): the RFC 8785 (JCS) form
 * of a flat object of strings and integers. JCS for such an object is
 * JSON.stringify with keys in UTF-16 order — which is what the literal below
 * spells out — so the hot path needs no general canonicalizer; the tests check
 * it against the `canonicalize` package over random entries.
 */
import type { Split } from '../hotpath/hotpath.ts';

export interface LedgerEntry {
  v: 1;
  seq: number;
  ts: number;
  subject: string;
  beneficiary: string;
  amount: bigint;
  split: Split;
  policy: string;
  ref: string | null;
  /** Lower-case hex SHA-256 of the authentication evidence. */
  evidence: string;
}

const str = JSON.stringify;

export function canonicalEntry(e: LedgerEntry): string {
  // Keys in code-unit order: amount, beneficiary, evidence, policy, ref, seq, split{creator, fee, pool}, subject, ts, v.
  // Spelt out rather than JSON.stringify of an object built for it: a third
  // less time per entry (0.9 against 1.3 µs here), and it runs once per
  // booked event on the event loop. Strings still go through JSON.stringify,
  // whose escaping is JCS's; integers print the same either way.
  return `{"amount":"${e.amount}","beneficiary":${str(e.beneficiary)},"evidence":${str(e.evidence)},"policy":${str(e.policy)},"ref":${e.ref === null ? 'null' : str(e.ref)},"seq":${e.seq},"split":{"creator":"${e.split.creator}","fee":"${e.split.fee}","pool":"${e.split.pool}"},"subject":${str(e.subject)},"ts":${e.ts},"v":${e.v}}`;
}

/** Parses canonical bytes back into an entry; throws on anything that isn't one. */
export function parseCanonicalEntry(text: string): LedgerEntry {
  const o = JSON.parse(text) as Record<string, unknown>;
  const s = o.split as Record<string, unknown> | null;
  const entry: LedgerEntry = {
    v: o.v as 1,
    seq: o.seq as number,
    ts: o.ts as number,
    subject: o.subject as string,
    beneficiary: o.beneficiary as string,
    amount: BigInt(o.amount as string),
    split: { creator: BigInt(s?.creator as string), pool: BigInt(s?.pool as string), fee: BigInt(s?.fee as string) },
    policy: o.policy as string,
    ref: (o.ref ?? null) as string | null,
    evidence: o.evidence as string,
  };
  if (entry.v !== 1 || canonicalEntry(entry) !== text) throw new Error('not a canonical ledger entry');
  return entry;
}
