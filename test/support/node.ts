/** Test helpers: temp data directories and in-process nodes on loopback ports. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataDir, initDataDir, loadConfig, type DataDir } from '../../src/config/datadir.ts';
import { startNode, type RunningNode } from '../../src/server/node.ts';
import { jsonLogger } from '../../src/telemetry/logger.ts';
import type { Config } from '../../src/config/config.ts';
import type { CheckpointRecord } from '../../src/log/log.ts';

export function tempDir(prefix = 'nexus-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The latest checkpoint once one covers every entry booked so far, on a
 * running node (whose timer may have cut it already, or be cutting it).
 */
export async function checkpointNow(node: RunningNode): Promise<CheckpointRecord> {
  await node.log.cutInBackground();
  return node.log.latest()!;
}

export interface TestNode extends RunningNode {
  url: string;
  adminUrl: string;
  data: DataDir;
  logs: string[];
  cleanup(): Promise<void>;
}

export async function startTestNode(options: { dev?: boolean; configure?: (c: Config) => void; dir?: string } = {}): Promise<TestNode> {
  const tmp = options.dir ? { dir: options.dir, cleanup() {} } : tempDir();
  const data = dataDir(tmp.dir);
  initDataDir(data);
  const config = loadConfig(data);
  config.listen.port = 0;
  config.listen.admin_port = 0;
  options.configure?.(config);
  const logs: string[] = [];
  let node: RunningNode;
  try {
    node = await startNode({ data, config, dev: options.dev ?? true, logger: jsonLogger([(l) => logs.push(l)]) });
  } catch (e) {
    tmp.cleanup(); // a node refused at start (fail-closed tests) leaves no directory behind
    throw e;
  }
  return {
    ...node,
    url: `http://127.0.0.1:${node.port}`,
    adminUrl: `http://127.0.0.1:${node.adminPort}`,
    data,
    logs,
    async cleanup() {
      await node.stop();
      tmp.cleanup();
    },
  };
}

export function devPost(url: string, body: unknown, name = 'alice', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': name, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function devGet(url: string, name = 'alice'): Promise<Response> {
  return fetch(url, { headers: { 'x-nexus-dev-identity': name } });
}
