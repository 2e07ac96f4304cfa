/**
 * The 60/30/10 brain: exact integer splits, computed in one WASM call per
 * group commit and checked against the invariant before anything is written.
 */
import { splitAmounts, SplitInvariantError, type Split } from '../hotpath/hotpath.ts';
import type { Policy } from './policy.ts';

export type { Split };
export { SplitInvariantError };

/**
 * Splits every amount by the policy. Throws SplitInvariantError (never
 * "corrects") when creator + pool + fee != amount or a share is negative.
 */
export function splitBatch(amounts: readonly bigint[], policy: Policy): Split[] {
  const splits = splitAmounts(amounts, policy.creatorBp, policy.poolBp);
  // Second, independent check on the host side: the WASM result is trusted only
  // after it adds up here too.
  for (let i = 0; i < splits.length; i++) {
    const s = splits[i]!;
    if (s.creator < 0n || s.pool < 0n || s.fee < 0n || s.creator + s.pool + s.fee !== amounts[i]) {
      throw new SplitInvariantError(i, amounts[i]!);
    }
  }
  return splits;
}
