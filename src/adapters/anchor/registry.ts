/** Builds the anchor adapters of `[[anchors]]`; a half-configured one stops the start. */
import type { AnchorConfig } from '../../config/config.ts';
import { fs, path } from '../../runtime/fs.ts';
import type { AnchorAdapter } from './adapter.ts';
import { fileAnchor } from './file.ts';
import { evmAnchor, EVM_PRESETS } from './evm.ts';

export class AnchorConfigError extends Error {}

export function buildAnchorAdapters(anchors: readonly AnchorConfig[], dataDir: string): AnchorAdapter[] {
  const chains = new Set<string>();
  return anchors.map((a, i) => {
    const where = `[[anchors]] #${i + 1}`;
    let adapter: AnchorAdapter;
    if (a.type === 'file') {
      adapter = fileAnchor(path.resolve(dataDir, a.path ?? 'anchors.jsonl'));
    } else {
      const preset = a.chain === undefined ? undefined : EVM_PRESETS[a.chain];
      if (a.chain !== undefined && !preset) throw new AnchorConfigError(`${where}: unknown chain "${a.chain}" (presets: ${Object.keys(EVM_PRESETS).join(', ')}; or set chain_id)`);
      const chainId = a.chain_id ?? preset?.id;
      if (chainId === undefined || !Number.isSafeInteger(chainId) || chainId < 1) throw new AnchorConfigError(`${where}: set chain = "<preset>" or chain_id = N`);
      if (preset && a.chain_id !== undefined && a.chain_id !== preset.id) throw new AnchorConfigError(`${where}: chain "${a.chain}" is chain id ${preset.id}, not ${a.chain_id}`);
      if (!a.rpc_url || !/^https?:\/\//.test(a.rpc_url)) throw new AnchorConfigError(`${where}: rpc_url (http or https) is required`);
      if (!a.key_file) throw new AnchorConfigError(`${where}: key_file is required`);
      const keyFile = path.resolve(dataDir, a.key_file);
      let key: string;
      try {
        key = fs.readFileSync(keyFile, 'utf8').trim();
      } catch {
        throw new AnchorConfigError(`${where}: cannot read key_file ${keyFile}`);
      }
      if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new AnchorConfigError(`${where}: ${keyFile} must hold a 0x-prefixed 32-byte hex private key`);
      const confirmations = a.confirmations ?? 1;
      if (!(confirmations >= 1)) throw new AnchorConfigError(`${where}: confirmations must be at least 1`);
      if (a.stuck_after_s !== undefined && !(a.stuck_after_s >= 1)) throw new AnchorConfigError(`${where}: stuck_after_s must be at least 1`);
      adapter = evmAnchor({
        chainId, rpcUrl: a.rpc_url, privateKey: key as `0x${string}`, confirmations,
        ...(a.stuck_after_s ? { stuckAfterMs: a.stuck_after_s * 1000 } : {}),
        ...(preset ? { name: preset.name } : {}),
      });
    }
    if (chains.has(adapter.chain)) throw new AnchorConfigError(`${where}: ${adapter.chain} is configured twice`);
    chains.add(adapter.chain);
    return adapter;
  });
}
