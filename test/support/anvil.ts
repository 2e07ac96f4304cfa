/** Real local EVM nodes: `anvil` from the npm package @foundry-rs/anvil, on loopback. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { root } from './spawn.ts';

/** anvil's default account #0 (funded with 10,000 ETH on every fresh anvil). */
export const ANVIL_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
export const ANVIL_ADDRESS = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Anvil {
  port: number;
  url: string;
  chainId: number;
  rpc(method: string, params?: unknown[]): Promise<any>;
  stop(): Promise<void>;
}

export async function startAnvil(chainId: number, options: { port?: number; noMining?: boolean } = {}): Promise<Anvil> {
  const port = options.port ?? await freePort();
  const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--silent'];
  if (options.noMining) args.push('--no-mining');
  // The npm bin is a node wrapper that spawns the real binary: run it in its own
  // process group so stop() can kill both.
  const proc: ChildProcess = spawn(join(root, 'node_modules', '.bin', 'anvil'), args, { stdio: 'ignore', detached: true });
  const url = `http://127.0.0.1:${port}`;
  const rpc = async (method: string, params: unknown[] = []) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const body = await res.json() as { result?: unknown; error?: { message: string } };
    if (body.error) throw new Error(body.error.message);
    return body.result;
  };
  const exited = new Promise((r) => proc.once('exit', r));
  for (let i = 0; i < 100; i++) {
    try {
      if (Number(await rpc('eth_chainId')) === chainId) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (i === 99) throw new Error(`anvil on ${port} did not start`);
  }
  return {
    port, url, chainId, rpc,
    async stop() {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
      // Wait until the port no longer answers.
      for (let i = 0; i < 50; i++) {
        try {
          await rpc('eth_chainId');
          await new Promise((r) => setTimeout(r, 50));
        } catch {
          return;
        }
      }
    },
  };
}
