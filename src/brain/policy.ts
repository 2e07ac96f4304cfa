/**
 * The revenue policy: creator and pool shares in basis points; the fee takes
 * the rest and the rounding dust. Fixed per vault (stored at init).
 */
export interface Policy {
  readonly creatorBp: number;
  readonly poolBp: number;
  readonly feeBp: number;
}

export const DEFAULT_POLICY: Policy = { creatorBp: 6000, poolBp: 3000, feeBp: 1000 };

const BP = /^(0|[1-9][0-9]{0,4})$/;

/** Parses "6000/3000/1000"; the three shares must be whole basis points summing to 10,000. */
export function parsePolicy(text: string): Policy {
  const parts = text.split('/');
  if (parts.length !== 3 || !parts.every((p) => BP.test(p))) {
    throw new Error(`policy must be three basis-point shares "creator/pool/fee", got "${text}"`);
  }
  const [creatorBp, poolBp, feeBp] = parts.map(Number) as [number, number, number];
  if (creatorBp + poolBp + feeBp !== 10_000) throw new Error(`policy shares must sum to 10000, got "${text}"`);
  return { creatorBp, poolBp, feeBp };
}

export function formatPolicy(p: Policy): string {
  return `${p.creatorBp}/${p.poolBp}/${p.feeBp}`;
}
