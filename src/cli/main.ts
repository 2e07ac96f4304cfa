/**
 * The `nexus` controller (SPEC §8). Each command is a function of parsed
 * flags; exit codes: 0 ok, 1 failure, 2 refused (bad usage or a fail-closed
 * security setting).
 */
import { ConfigError, type Config } from '../config/config.ts';
import { dataDir, initDataDir, loadConfig, type DataDir } from '../config/datadir.ts';
import { FailClosedError, startNode } from '../server/node.ts';
import { VaultLockedError } from '../vault/pid-lock.ts';
import { fs, path, writeFileDurable } from '../runtime/fs.ts';
import { argv, env, exit, onShutdownSignal, parseArgs, stderrLine, stdoutLine } from '../runtime/process.ts';
import { jsonLogger, type Logger } from '../telemetry/logger.ts';
import { VERSION } from '../server/app.ts';
import { generateKey, parseKeyFile, parseDid, DidError, type KeyType } from '../adapters/identity/keys.ts';
import { signedFetch, readRuntime, runtimeFile, adminUrl, publicUrl, type RuntimeInfo } from './client.ts';
import { Vault } from '../vault/vault.ts';
import { loadAdminToken } from '../config/datadir.ts';

class UsageError extends Error {}

const COMMON = {
  data: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Command {
  summary: string;
  usage: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

function die(message: string, code: number): never {
  stderrLine(`nexus: ${message}`);
  exit(code);
}

function intFlag(v: string | boolean | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) throw new UsageError(`--${name} takes a port number from 0 to 65535`);
  return Number(v);
}

function resolveData(values: Record<string, string | boolean | undefined>): DataDir {
  return dataDir(values.data as string | undefined, values.config as string | undefined);
}

/** Config from the data directory, then NEXUS_* env, then flags. */
function effectiveConfig(d: DataDir, values: Record<string, string | boolean | undefined>): Config {
  const config = loadConfig(d);
  const host = (values.host as string | undefined) ?? env('NEXUS_HOST');
  const port = intFlag(values.port ?? env('NEXUS_PORT'), 'port');
  const adminPort = intFlag(values['admin-port'] ?? env('NEXUS_ADMIN_PORT'), 'admin-port');
  if (host !== undefined) config.listen.host = host;
  if (port !== undefined) config.listen.port = port;
  if (adminPort !== undefined) config.listen.admin_port = adminPort;
  return config;
}

function fileLogger(d: DataDir): Logger {
  fs.mkdirSync(d.logDir, { recursive: true });
  const file = path.join(d.logDir, 'nexus.log');
  return jsonLogger([
    (line) => stdoutLine(line),
    (line) => fs.appendFileSync(file, `${line}\n`),
  ]);
}

const commands: Record<string, Command> = {
  init: {
    summary: 'create the data directory: nexus.toml, node.key, admin.token',
    usage: 'nexus init [--data DIR] [--config FILE]',
    options: { ...COMMON },
    async run(values) {
      const d = resolveData(values);
      const created = initDataDir(d);
      loadConfig(d);
      stdoutLine(created.length ? created.map((f) => `created ${f}`).join('\n') : `nothing to do: ${d.dir} is initialised`);
      return 0;
    },
  },
  start: {
    summary: 'run the node in the foreground (initialises an empty data directory first)',
    usage: 'nexus start [--data DIR] [--config FILE] [--host H] [--port N] [--admin-port N] [--dev]',
    options: { ...COMMON, host: { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' }, dev: { type: 'boolean' } },
    async run(values) {
      const d = resolveData(values);
      initDataDir(d);
      const config = effectiveConfig(d, values);
      const logger = fileLogger(d);
      const node = await startNode({ data: d, config, dev: values.dev === true, logger });
      writeFileDurable(d.pidFile, `${process.pid}\n`, 0o644);
      const runtime: RuntimeInfo = { pid: process.pid, host: config.listen.host, port: node.port, adminHost: config.listen.admin_host, adminPort: node.adminPort, startedAt: new Date().toISOString() };
      writeFileDurable(runtimeFile(d), `${JSON.stringify(runtime)}\n`, 0o644);
      stdoutLine(JSON.stringify({ event: 'listening', port: node.port, adminPort: node.adminPort }));
      await new Promise<void>((resolve) => {
        onShutdownSignal((signal) => {
          logger.info('shutdown', { signal });
          node.stop().then(resolve, (e) => {
            logger.error('shutdown_failed', { error: String(e) });
            resolve();
          });
        });
      });
      fs.rmSync(d.pidFile, { force: true });
      fs.rmSync(runtimeFile(d), { force: true });
      return 0;
    },
  },
  keygen: {
    summary: 'create a device key (ed25519 did:key, sr25519 did:peaq, secp256k1 did:io)',
    usage: 'nexus keygen --type ed25519|sr25519|secp256k1 [--out FILE]',
    options: { help: COMMON.help, type: { type: 'string' }, out: { type: 'string' } },
    async run(values) {
      const type = (values.type ?? 'ed25519') as KeyType;
      if (!['ed25519', 'sr25519', 'secp256k1'].includes(type)) throw new UsageError('--type is ed25519, sr25519 or secp256k1');
      const key = await generateKey(type);
      const text = `${JSON.stringify(key, null, 2)}\n`;
      if (typeof values.out === 'string') {
        if (fs.existsSync(values.out)) throw new UsageError(`${values.out} exists; not overwriting a key`);
        writeFileDurable(path.resolve(values.out), text, 0o600);
        stdoutLine(key.did);
      } else {
        // The key goes to stdout (`> dev.key`); the DID to stderr so it shows.
        process.stdout.write(text);
        stderrLine(key.did);
      }
      return 0;
    },
  },
  send: {
    summary: 'send a signed event (the reference client of RFC 9421 device signatures)',
    usage: 'nexus send --key FILE --amount N [--beneficiary B] [--ref R] [--url URL] [--data DIR]',
    options: { ...COMMON, key: { type: 'string' }, amount: { type: 'string' }, beneficiary: { type: 'string' }, ref: { type: 'string' }, url: { type: 'string' } },
    async run(values) {
      if (typeof values.key !== 'string' || typeof values.amount !== 'string') throw new UsageError('--key and --amount are required');
      const key = parseKeyFile(fs.readFileSync(values.key, 'utf8'));
      const base = (values.url as string | undefined) ?? env('NEXUS_URL') ?? nodeUrl(resolveData(values));
      const body: Record<string, string> = { amount: values.amount };
      if (typeof values.beneficiary === 'string') body.beneficiary = values.beneficiary;
      if (typeof values.ref === 'string') body.ref = values.ref;
      const res = await signedFetch(key, 'POST', `${base.replace(/\/$/, '')}/v1/events`, body);
      const text = await res.text();
      (res.ok ? stdoutLine : stderrLine)(text);
      return res.ok ? 0 : 1;
    },
  },
  device: {
    summary: 'enrol, remove or list devices (through the running node, or the vault when stopped)',
    usage: 'nexus device add DID [--label L] | remove DID | list   [--data DIR]',
    options: { ...COMMON, label: { type: 'string' } },
    async run(values, positionals) {
      const [action, did] = positionals;
      const d = resolveData(values);
      if (action === 'list') {
        const devices = await withDevices(d, async (api) => api.list());
        for (const dev of devices) stdoutLine(`${dev.did}\t${dev.label ?? ''}\t${dev.addedAt}`);
        return 0;
      }
      if ((action !== 'add' && action !== 'remove') || !did) throw new UsageError('device add DID | device remove DID | device list');
      if (action === 'add') {
        parseDid(did);
        const created = await withDevices(d, (api) => api.add(did, (values.label as string | undefined) ?? null));
        stdoutLine(created ? `enrolled ${did}` : `${did} was already enrolled`);
        return 0;
      }
      const removed = await withDevices(d, (api) => api.remove(did));
      if (!removed) {
        stderrLine(`nexus: ${did} is not enrolled`);
        return 1;
      }
      stdoutLine(`removed ${did}`);
      return 0;
    },
  },
};

function nodeUrl(d: DataDir): string {
  const r = readRuntime(d);
  return r ? publicUrl(r) : 'http://127.0.0.1:8787';
}

interface DeviceApi {
  list(): Promise<Array<{ did: string; label: string | null; addedAt: string }>>;
  add(did: string, label: string | null): Promise<boolean>;
  remove(did: string): Promise<boolean>;
}

/** Talks to the running node's admin API; when no node runs, opens the vault itself. */
async function withDevices<T>(d: DataDir, fn: (api: DeviceApi) => Promise<T>): Promise<T> {
  const runtime = readRuntime(d);
  if (runtime) {
    const base = adminUrl(runtime);
    const auth = { authorization: `Bearer ${loadAdminToken(d)}` };
    const call = async (method: string, p: string, body?: unknown) => {
      let res: Response;
      try {
        res = await fetch(`${base}${p}`, { method, headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      } catch {
        return undefined;
      }
      return res;
    };
    const probe = await call('GET', '/v1/admin/devices');
    if (probe) {
      if (!probe.ok) throw new Error(`admin API answered ${probe.status}: ${await probe.text()}`);
      return fn({
        list: async () => ((await probe.json()) as { devices: Array<{ did: string; label: string | null; addedAt: string }> }).devices,
        add: async (did, label) => {
          const res = (await call('POST', '/v1/admin/devices', { did, ...(label ? { label } : {}) }))!;
          if (!res.ok) throw new Error(`admin API answered ${res.status}: ${await res.text()}`);
          return res.status === 201;
        },
        remove: async (did) => {
          const res = (await call('DELETE', `/v1/admin/devices/${encodeURIComponent(did)}`))!;
          if (res.status === 404) return false;
          if (!res.ok) throw new Error(`admin API answered ${res.status}: ${await res.text()}`);
          return true;
        },
      });
    }
  }
  initDataDir(d);
  const vault = await Vault.open(d.vaultFile);
  try {
    return await fn({
      list: async () => vault.devices(),
      add: async (did, label) => vault.addDevice(did, label),
      remove: async (did) => vault.removeDevice(did),
    });
  } finally {
    vault.close();
  }
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    `nexus ${VERSION} — sovereign edge gateway`,
    '',
    'Usage: nexus <command> [flags]   (nexus <command> --help for its flags)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Data directory: --data DIR, or NEXUS_DATA, default ./nexus-data',
  ].join('\n');
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    stdoutLine(help());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    stdoutLine(VERSION);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    stderrLine(`nexus: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    stderrLine(`nexus ${name}: ${(e as Error).message}\nusage: ${command.usage}`);
    return 2;
  }
  if (parsed.values.help) {
    stdoutLine(`${command.summary}\n\nusage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError) die(`${name}: ${e.message}\nusage: ${command.usage}`, 2);
    if (e instanceof FailClosedError) die(e.message, 2);
    if (e instanceof ConfigError) die(e.message, 2);
    if (e instanceof VaultLockedError) die(e.message, 1);
    if (e instanceof DidError) die(`${name}: ${e.message}`, 2);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') die(`${(e as Error).message}: the port is taken (choose another with --port)`, 1);
    die((e as Error).stack ?? String(e), 1);
  }
}

main(argv()).then((code) => exit(code));
