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
      return 0;
    },
  },
};

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
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') die(`${(e as Error).message}: the port is taken (choose another with --port)`, 1);
    die((e as Error).stack ?? String(e), 1);
  }
}

main(argv()).then((code) => exit(code));
