/** Amounts are integers in minor units, 1 ≤ a ≤ 2^64 − 1; never floats. */
export const MAX_AMOUNT = 0xffff_ffff_ffff_ffffn;

const DIGITS = /^[1-9][0-9]{0,19}$/;

/**
 * An amount from JSON: a string of decimal digits (no sign, no leading zero),
 * or a plain JSON number that is a safe integer. Returns undefined when invalid.
 */
export function parseAmount(value: unknown): bigint | undefined {
  if (typeof value === 'string') {
    if (!DIGITS.test(value)) return undefined;
    const a = BigInt(value);
    return a <= MAX_AMOUNT ? a : undefined;
  }
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 1 ? BigInt(value) : undefined;
  }
  return undefined;
}

/**
 * A legacy decimal amount (the original node's `{"amount": 12.34}`), at most two
 * decimals, converted exactly to minor units (cents). The number is read back
 * through its shortest decimal form, so 0.1 + 0.2 style binary noise can't leak in.
 */
export function parseLegacyAmount(value: unknown): bigint | undefined {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) return undefined;
    text = String(value);
    if (/e/i.test(text)) return undefined;
  } else if (typeof value === 'string') {
    text = value;
  } else {
    return undefined;
  }
  const m = /^(0|[1-9][0-9]{0,17})(?:\.([0-9]{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const minor = BigInt(m[1]!) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
  return minor >= 1n && minor <= MAX_AMOUNT ? minor : undefined;
}
