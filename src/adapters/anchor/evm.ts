/**
 * The EVM adapter (viem): a legacy transaction from the anchor account to
 * itself, carrying the 40-byte payload as calldata. IoTeX and peaq presets, or
 * any chain id + RPC URL. The nonce is stored with the receipt so a restart
 * re-follows the same transaction, and a transaction that stays pending past
 * `stuckAfterMs` is replaced (same nonce, higher gas price).
 */
import {
  BaseError, InsufficientFundsError, TransactionReceiptNotFoundError, TransactionNotFoundError,
  createPublicClient, createWalletClient, defineChain, http, type Chain, type Hex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { AnchorError, anchorPayload, toHex, type AnchorAdapter, type AnchorReceiptRow, type CheckpointRef, type Confirmation, type Submission } from './adapter.ts';

export const EVM_PRESETS: Record<string, { id: number; name: string; symbol: string }> = {
  iotex: { id: 4689, name: 'IoTeX', symbol: 'IOTX' },
  'iotex-testnet': { id: 4690, name: 'IoTeX Testnet', symbol: 'IOTX' },
  peaq: { id: 3338, name: 'peaq', symbol: 'PEAQ' },
  'peaq-agung': { id: 9990, name: 'peaq agung', symbol: 'AGNG' },
};

export interface EvmAnchorOptions {
  chainId: number;
  rpcUrl: string;
  /** 0x-prefixed 32-byte hex private key. */
  privateKey: Hex;
  confirmations: number;
  stuckAfterMs?: number;
  name?: string;
  now?: () => number;
}

function message(e: unknown): string {
  if (e instanceof BaseError) return e.shortMessage;
  return (e as Error)?.message ?? String(e);
}

export function evmAnchor(options: EvmAnchorOptions): AnchorAdapter & { address: Hex } {
  if (!/^0x[0-9a-fA-F]{64}$/.test(options.privateKey)) throw new AnchorError('the anchor key must be 0x followed by 64 hex digits', true);
  const account = privateKeyToAccount(options.privateKey);
  const chain: Chain = defineChain({
    id: options.chainId,
    name: options.name ?? `eip155:${options.chainId}`,
    nativeCurrency: { name: 'native', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
  });
  const transport = http(options.rpcUrl, { timeout: 10_000, retryCount: 1 });
  const pub = createPublicClient({ chain, transport });
  const wallet = createWalletClient({ account, chain, transport });
  const caip = `eip155:${options.chainId}`;
  const now = options.now ?? Date.now;
  const stuckAfter = options.stuckAfterMs ?? 120_000;
  let chainChecked = false;

  async function ensureChain(): Promise<void> {
    if (chainChecked) return;
    let id: number;
    try {
      id = await pub.getChainId();
    } catch (e) {
      throw new AnchorError(`${caip}: RPC ${options.rpcUrl} unreachable: ${message(e)}`);
    }
    if (id !== options.chainId) throw new AnchorError(`${caip}: the RPC at ${options.rpcUrl} answers chain id ${id}, not ${options.chainId}; fix rpc_url or chain`);
    chainChecked = true;
  }

  return {
    chain: caip,
    adapter: 'evm',
    address: account.address,

    async anchor(cp: CheckpointRef, previous?: AnchorReceiptRow): Promise<Submission> {
      await ensureChain();
      const data = toHex(anchorPayload(cp));
      // Replacing a stuck transaction keeps its nonce; anything else takes the next one.
      const replacing = previous?.state === 'submitted' && previous.nonce !== null;
      try {
        const nonce = replacing ? previous!.nonce! : await pub.getTransactionCount({ address: account.address, blockTag: 'pending' });
        let gasPrice = await pub.getGasPrice();
        if (replacing) gasPrice = (gasPrice * 3n) / 2n + 1n;
        const gas = await pub.estimateGas({ account: account.address, to: account.address, data, value: 0n });
        const balance = await pub.getBalance({ address: account.address });
        if (balance < gas * gasPrice) throw new AnchorError(`${caip}: anchor account ${account.address} has no funds for gas (balance ${balance} wei)`);
        const tx = await wallet.sendTransaction({ account, chain, to: account.address, data, value: 0n, nonce, gas, gasPrice, type: 'legacy' });
        return { tx, nonce };
      } catch (e) {
        if (e instanceof AnchorError) throw e;
        if (e instanceof InsufficientFundsError || /insufficient funds/i.test(message(e))) {
          throw new AnchorError(`${caip}: anchor account ${account.address} has no funds for gas`);
        }
        throw new AnchorError(`${caip}: submitting failed: ${message(e)}`);
      }
    },

    async confirm(row: AnchorReceiptRow & { submittedAt?: number | null }): Promise<Confirmation> {
      if (!row.tx) return { state: 'failed', reason: 'no transaction hash recorded' };
      await ensureChain();
      try {
        const receipt = await pub.getTransactionReceipt({ hash: row.tx as Hex });
        if (receipt.status !== 'success') return { state: 'failed', reason: `transaction ${row.tx} reverted` };
        const head = await pub.getBlockNumber();
        const confirmations = Number(head - receipt.blockNumber + 1n);
        if (confirmations >= options.confirmations) return { state: 'confirmed', block: Number(receipt.blockNumber), confirmations };
        return { state: 'pending' };
      } catch (e) {
        if (!(e instanceof TransactionReceiptNotFoundError)) throw new AnchorError(`${caip}: confirming failed: ${message(e)}`);
      }
      // Not mined. If its nonce is used by a mined transaction, ours was dropped or replaced.
      if (row.nonce !== null) {
        const mined = await pub.getTransactionCount({ address: account.address, blockTag: 'latest' });
        if (mined > row.nonce) return { state: 'failed', reason: `transaction ${row.tx} was dropped (nonce ${row.nonce} used elsewhere)` };
      }
      const stuck = row.submittedAt != null && now() - row.submittedAt > stuckAfter;
      return { state: 'pending', stuck };
    },

    async verify(row: AnchorReceiptRow, cp: CheckpointRef): Promise<boolean> {
      if (!row.tx) return false;
      try {
        await ensureChain();
        const tx = await pub.getTransaction({ hash: row.tx as Hex });
        const receipt = await pub.getTransactionReceipt({ hash: row.tx as Hex });
        return receipt.status === 'success' && tx.input.toLowerCase() === toHex(anchorPayload(cp)) && tx.to?.toLowerCase() === account.address.toLowerCase();
      } catch (e) {
        if (e instanceof TransactionNotFoundError || e instanceof TransactionReceiptNotFoundError) return false;
        throw new AnchorError(`${caip}: reading ${row.tx} failed: ${message(e)}`);
      }
    },
  };
}
