/**
 * The vault as the node books into it, without the node: the real Vault,
 * Merkle tree and GroupCommitter on a fresh file in `dir`. Checkpoints are
 * never cut here, so the log gets a throwaway signer. For the benches that
 * measure the vault alone (bench/commit.ts, bench/writer-thread.ts).
 */
import { join } from 'node:path';
import { TransparencyLog } from '../../src/log/log.ts';
import { GroupCommitter } from '../../src/vault/group-commit.ts';
import { Vault } from '../../src/vault/vault.ts';

export async function openVaultAlone(dir: string) {
  const vault = await Vault.open(join(dir, 'vault.db'));
  const log = new TransparencyLog(vault, 'bench.example/log', { name: 'bench.example/log', publicKey: new Uint8Array(32), sign: () => new Uint8Array(64) });
  log.open();
  const committer = new GroupCommitter(vault, { integrate: (leaves, n) => log.tree.integrate(leaves, n) });
  return {
    vault,
    committer,
    async close() {
      await committer.close();
      vault.close();
    },
  };
}
