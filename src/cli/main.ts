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
import { startCpuProfile } from '../runtime/profiler.ts';
import { argv, env, exit, onShutdownSignal, parseArgs, processAlive, stderrLine, stdoutLine, tuneHeapForLongRunning, lowerHelperThreadPriority } from '../runtime/process.ts';
import { jsonLogger, type Logger } from '../telemetry/logger.ts';
import { VERSION } from '../server/app.ts';
import { generateKey, parseKeyFile, parseDid, DidError, type KeyType } from '../adapters/identity/keys.ts';
import { signedFetch, readRuntime, runtimeFile, adminUrl, publicUrl, type RuntimeInfo } from './client.ts';
import { Vault } from '../vault/vault.ts';
import { loadAdminToken, loadNodeKey } from '../config/datadir.ts';
import { TransparencyLog } from '../log/log.ts';
import { auditVault } from '../log/audit.ts';
import { verifyProofBundle, parseVerifierKey, type ProofBundle } from '../log/verify.ts';
import { nodeSigner } from '../server/node.ts';
import { exportLine } from '../server/admin.ts';
import { spawnDetached } from '../runtime/process.ts';
import { runBench, reportTable } from '../bench/harness.ts';
import { serveCeiling } from '../bench/ceiling.ts';
import { TunnelSupervisor, findExecutable, INSTALL_HINTS, type TunnelKind } from '../gateway/tunnel.ts';
import { buildAnchorAdapters } from '../adapters/anchor/registry.ts';

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

const LOG_MAX_BYTES = 10 * 1024 * 1024;
const LOG_KEEP = 5;

/** JSON lines to stdout and to logs/nexus.log, rotated at 10 MiB (nexus.log.1 … .5). */
function fileLogger(d: DataDir, toStdout = true): Logger {
  fs.mkdirSync(d.logDir, { recursive: true });
  const file = path.join(d.logDir, 'nexus.log');
  let size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  const rotate = () => {
    for (let i = LOG_KEEP - 1; i >= 1; i--) {
      if (fs.existsSync(`${file}.${i}`)) fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    }
    if (fs.existsSync(file)) fs.renameSync(file, `${file}.1`);
    size = 0;
  };
  return jsonLogger([
    ...(toStdout ? [(line: string) => stdoutLine(line)] : []),
    (line: string) => {
      if (size + line.length + 1 > LOG_MAX_BYTES) rotate();
      fs.appendFileSync(file, `${line}\n`);
      size += Buffer.byteLength(line) + 1;
    },
  ]);
}

function logFile(d: DataDir): string {
  return path.join(d.logDir, 'nexus.log');
}

const alive = processAlive;

/**
 * A call to the running node's admin API (bearer admin.token), or undefined
 * when no node runs here or it does not answer.
 */
async function adminFetch(d: DataDir, apiPath: string, init: RequestInit = {}): Promise<Response | undefined> {
  const runtime = readRuntime(d);
  if (!runtime) return undefined;
  const headers = { authorization: `Bearer ${loadAdminToken(d)}`, ...(init.headers as Record<string, string> | undefined) };
  return fetch(`${adminUrl(runtime)}${apiPath}`, { ...init, headers }).catch((e) => {
    if (env('NEXUS_DEBUG')) stderrLine(String((e as Error & { cause?: unknown })?.cause ?? e));
    return undefined;
  });
}

/** The argv that re-runs this program (node script, or a single executable) with `args`. */
function selfCommand(args: string[]): { file: string; args: string[] } {
  const sea = (process as { getBuiltinModule?: (m: string) => { isSea?: () => boolean } | undefined }).getBuiltinModule?.('node:sea');
  if (sea?.isSea?.()) return { file: process.execPath, args };
  return { file: process.execPath, args: [...process.execArgv, process.argv[1]!, ...args] };
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
    usage: 'nexus start [--daemon] [--data DIR] [--config FILE] [--host H] [--port N] [--admin-port N] [--dev]',
    options: { ...COMMON, host: { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' }, dev: { type: 'boolean' }, daemon: { type: 'boolean' } },
    async run(values) {
      const d = resolveData(values);
      initDataDir(d);
      const config = effectiveConfig(d, values);
      if (values.daemon) return startDaemon(d);
      const logger = fileLogger(d);
      // NEXUS_CPU_PROFILE=FILE: V8's CPU profile of this node's whole life, written at shutdown.
      const profileTo = env('NEXUS_CPU_PROFILE');
      const profileFile = profileTo ? path.resolve(profileTo) : undefined;
      const stopProfile = profileFile ? await startCpuProfile() : undefined;
      tuneHeapForLongRunning();
      const lowered = await lowerHelperThreadPriority();
      if (lowered > 0) logger.info('helper_threads_lowered', { threads: lowered, nice: 10, detail: 'thread pool and V8 helpers yield to the request path' });
      let requestStop: () => void = () => {};
      const node = await startNode({ data: d, config, dev: values.dev === true, logger, onShutdownRequest: () => requestStop() });
      writeFileDurable(d.pidFile, `${process.pid}\n`, 0o644);
      const runtime: RuntimeInfo = { pid: process.pid, host: config.listen.host, port: node.port, adminHost: config.listen.admin_host, adminPort: node.adminPort, startedAt: new Date().toISOString() };
      writeFileDurable(runtimeFile(d), `${JSON.stringify(runtime)}\n`, 0o644);
      stdoutLine(JSON.stringify({ event: 'listening', port: node.port, adminPort: node.adminPort }));
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (reason: string) => {
          if (stopping) return;
          stopping = true;
          logger.info('shutdown', { reason });
          node.stop().then(resolve, (e) => {
            logger.error('shutdown_failed', { error: String(e) });
            resolve();
          });
        };
        onShutdownSignal((signal) => stop(signal));
        requestStop = () => stop('admin');
      });
      fs.rmSync(d.pidFile, { force: true });
      fs.rmSync(runtimeFile(d), { force: true });
      if (profileFile && stopProfile) {
        writeFileDurable(profileFile, await stopProfile(), 0o644);
        logger.info('cpu_profile_written', { file: profileFile });
      }
      return 0;
    },
  },
  proof: {
    summary: 'write the proof bundle of an event (entry, audit path, signed checkpoint, anchors)',
    usage: 'nexus proof SEQ [--size N] [--out FILE] [--data DIR]',
    options: { ...COMMON, size: { type: 'string' }, out: { type: 'string' } },
    async run(values, positionals) {
      const seqText = positionals[0];
      if (!seqText || !/^[0-9]{1,15}$/.test(seqText)) throw new UsageError('SEQ must be an event number');
      const size = values.size === undefined ? undefined : Number(values.size);
      if (size !== undefined && !Number.isSafeInteger(size)) throw new UsageError('--size takes a checkpoint size');
      const d = resolveData(values);
      const out = (values.out as string | undefined) ?? 'proof.json';
      let bundle: unknown;
      const viaApi = await adminFetch(d, `/v1/admin/events/${seqText}/proof${size === undefined ? '' : `?size=${size}`}`);
      if (viaApi) {
        const text = await viaApi.text();
        if (!viaApi.ok) {
          stderrLine(`nexus proof: ${text}`);
          return 1;
        }
        bundle = JSON.parse(text);
      } else {
        const off = await openOffline(d);
        try {
          bundle = off.log.proofBundle(Number(seqText), size);
        } catch (e) {
          stderrLine(`nexus proof: ${(e as Error).message}`);
          return 1;
        } finally {
          off.close();
        }
      }
      writeFileDurable(path.resolve(out), `${JSON.stringify(bundle, null, 2)}\n`, 0o644);
      stdoutLine(`wrote ${out}`);
      return 0;
    },
  },
  'verify-proof': {
    summary: 'check a proof bundle offline, with nothing but the bundle',
    usage: 'nexus verify-proof FILE [--key VKEY]   (VKEY: name+id+base64 key to trust; else the bundle\'s own key is shown)',
    options: { help: COMMON.help, key: { type: 'string' } },
    async run(values, positionals) {
      const file = positionals[0];
      if (!file) throw new UsageError('FILE is required');
      let bundle: ProofBundle;
      try {
        bundle = JSON.parse(fs.readFileSync(file, 'utf8')) as ProofBundle;
      } catch (e) {
        stderrLine(`nexus verify-proof: ${file}: ${(e as Error).message}`);
        return 1;
      }
      let trusted: { name: string; publicKey: Uint8Array } | undefined;
      if (typeof values.key === 'string') {
        trusted = parseVerifierKey(values.key);
        if (!trusted) throw new UsageError('--key must be a verifier key name+hex8+base64 (see GET /v1/node)');
      }
      const verdict = verifyProofBundle(bundle, trusted);
      if (!verdict.ok) {
        stderrLine(`nexus verify-proof: INVALID: ${verdict.error}`);
        return 1;
      }
      stdoutLine(`OK: event ${bundle.index} is in the log ${verdict.origin} at size ${bundle.treeSize}, checkpoint signed by ${verdict.verifierKey}${trusted ? ' (trusted key)' : ''}`);
      stdoutLine(`anchors: ${bundle.anchors?.length ? bundle.anchors.map((a) => `${a.chain} ${a.state}${a.tx ? ` ${a.tx}` : ''}`).join(', ') : 'none in this bundle'}`);
      return 0;
    },
  },
  stop: {
    summary: 'stop the running node gracefully (drain, checkpoint, close the vault)',
    usage: 'nexus stop [--data DIR] [--timeout SECONDS]',
    options: { ...COMMON, timeout: { type: 'string' } },
    async run(values) {
      const d = resolveData(values);
      const runtime = readRuntime(d);
      const pidText = fs.existsSync(d.pidFile) ? fs.readFileSync(d.pidFile, 'utf8').trim() : undefined;
      const pid = runtime?.pid ?? (pidText ? Number(pidText) : undefined);
      if (!pid || !alive(pid)) {
        stdoutLine('not running');
        return 0;
      }
      // The admin API works the same on every OS; a signal is the fallback.
      const asked = (await adminFetch(d, '/v1/admin/shutdown', { method: 'POST' }))?.ok === true;
      if (!asked) process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + Number(values.timeout ?? 30) * 1000;
      while (alive(pid)) {
        if (Date.now() > deadline) {
          stderrLine(`nexus stop: process ${pid} still running after ${values.timeout ?? 30} s`);
          return 1;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      stdoutLine(`stopped (pid ${pid})`);
      return 0;
    },
  },
  status: {
    summary: 'is the node running: pid, ports, entries, latest checkpoint, anchor state, uptime',
    usage: 'nexus status [--data DIR] [--json]',
    options: { ...COMMON, json: { type: 'boolean' } },
    async run(values) {
      const d = resolveData(values);
      const runtime = readRuntime(d);
      // The admin API answering is the truth (a pid check alone is not, e.g. under wine).
      const res = await adminFetch(d, '/v1/admin/status');
      if (!res || !res.ok) {
        if (values.json) stdoutLine(JSON.stringify({ running: false }));
        else stdoutLine(`stopped (data ${d.dir})`);
        return 3;
      }
      const st = await res.json() as Record<string, any>;
      if (values.json) {
        stdoutLine(JSON.stringify({ running: true, ...st, tunnel: readTunnel(d) }));
        return 0;
      }
      stdoutLine([
        `running   pid ${st.pid}, up ${st.uptimeS} s`,
        `listen    public ${publicUrl(runtime!)}  admin ${adminUrl(runtime!)}`,
        `origin    ${st.origin}`,
        `entries   ${st.entries}`,
        `checkpt   ${st.checkpoint ? `size ${st.checkpoint.size} at ${new Date(st.checkpoint.ts).toISOString()}` : 'none'}`,
        ...tunnelLine(d),
        ...Object.entries(st.anchors ?? {}).map(([chain, a]: [string, any]) => `anchor    ${chain}: ${a.state} (size ${a.size})${a.error ? ` — ${a.error}` : ''}`),
      ].join('\n'));
      return 0;
    },
  },
  logs: {
    summary: 'print the node log (JSON lines); -f follows it',
    usage: 'nexus logs [-f] [--data DIR]',
    options: { ...COMMON, follow: { type: 'boolean', short: 'f' } },
    async run(values) {
      const d = resolveData(values);
      const file = logFile(d);
      if (!fs.existsSync(file)) {
        stderrLine(`nexus logs: no log at ${file}`);
        return 1;
      }
      let pos = 0;
      const dump = () => {
        const size = fs.statSync(file).size;
        if (size < pos) pos = 0; // rotated
        if (size === pos) return;
        const fd = fs.openSync(file, 'r');
        try {
          const buf = Buffer.alloc(size - pos);
          fs.readSync(fd, buf, 0, buf.length, pos);
          process.stdout.write(buf);
        } finally {
          fs.closeSync(fd);
        }
        pos = size;
      };
      dump();
      if (!values.follow) return 0;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          try {
            dump();
          } catch {
            // the file is being rotated; try again on the next tick
          }
        }, 250);
        onShutdownSignal(() => {
          clearInterval(timer);
          resolve();
        });
      });
      return 0;
    },
  },
  export: {
    summary: 'export the ledger as JSONL ({seq, leaf, entry}), from the running node or the stopped vault',
    usage: 'nexus export [--out FILE] [--from SEQ] [--data DIR]',
    options: { ...COMMON, out: { type: 'string' }, from: { type: 'string' } },
    async run(values) {
      const d = resolveData(values);
      const from = Number(values.from ?? 0);
      if (!Number.isSafeInteger(from) || from < 0) throw new UsageError('--from takes a seq');
      const out = typeof values.out === 'string' ? fs.openSync(values.out, 'w', 0o644) : 1;
      const write = (text: string) => {
        const b = Buffer.from(text);
        let done = 0;
        while (done < b.length) done += fs.writeSync(out, b, done);
      };
      const bar = progressBar('export');
      let n = 0;
      try {
        const res = await adminFetch(d, `/v1/admin/export?from=${from}`);
        if (res?.ok && res.body) {
          const total = ((await (await adminFetch(d, '/v1/admin/status'))?.json()) as { entries: number } | undefined)?.entries ?? 0;
          const decoder = new TextDecoder();
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            const text = decoder.decode(chunk, { stream: true });
            n += text.split('\n').length - 1;
            write(text);
            bar(n, total);
          }
        } else {
          const off = await openOffline(d);
          try {
            for (const row of off.vault.scan(from)) {
              write(`${exportLine(row)}\n`);
              if (++n % 4096 === 0) bar(n, off.vault.size);
            }
            bar(n, off.vault.size);
          } finally {
            off.close();
          }
        }
      } finally {
        bar.end();
        if (out !== 1) fs.closeSync(out);
      }
      if (typeof values.out === 'string') stdoutLine(`exported ${n} entries to ${values.out}`);
      return 0;
    },
  },
  tunnel: {
    summary: 'run and supervise cloudflared or ngrok in front of the node; shows the public URL',
    usage: 'nexus tunnel cloudflared|ngrok [--binary PATH] [--port N] [--data DIR]',
    options: { ...COMMON, binary: { type: 'string' }, port: { type: 'string' } },
    async run(values, positionals) {
      const kind = positionals[0] as TunnelKind;
      if (kind !== 'cloudflared' && kind !== 'ngrok') throw new UsageError('tunnel cloudflared | tunnel ngrok');
      const binary = findExecutable((values.binary as string | undefined) ?? kind);
      if (!binary) {
        stderrLine(`nexus: ${kind} not found: ${INSTALL_HINTS[kind]}`);
        return 2;
      }
      const d = resolveData(values);
      const runtime = readRuntime(d);
      const port = intFlag(values.port, 'port') ?? runtime?.port ?? loadConfig(d).listen.port;
      const config = loadConfig(d);
      if (kind === 'cloudflared' && config.ingress.mode !== 'cloudflare') {
        stderrLine('nexus: note: set [ingress] mode = "cloudflare" so client addresses come from Cf-Connecting-IP');
      }
      const stateFile = path.join(d.dir, 'tunnel.json');
      const logger = fileLogger(d, false);
      const supervisor = new TunnelSupervisor({
        kind,
        binary,
        localUrl: `http://127.0.0.1:${port}`,
        onState: (st) => {
          writeFileDurable(stateFile, `${JSON.stringify(st)}\n`, 0o644);
          if (st.url) stdoutLine(JSON.stringify({ event: 'tunnel', kind, url: st.url }));
          logger.info('tunnel_state', { ...st });
        },
      });
      supervisor.start();
      await new Promise<void>((resolve) => onShutdownSignal(() => resolve()));
      supervisor.stop();
      fs.rmSync(stateFile, { force: true });
      return 0;
    },
  },
  bench: {
    summary: 'load-test a fresh node on this machine (signed requests), then check every acknowledged event; --crash-trials N kills it under load',
    usage: 'nexus bench [--events N] [--batch N] [--concurrency N | --rate RPS] [--devices N] [--key-type ed25519|sr25519|secp256k1] [--warmup N] [--crash-trials N] [--ceiling] [--cpu-prof DIR] [--url URL] [--data DIR] [--report FILE]\n\n  --data DIR       run the node in DIR and keep it (default: a temporary directory, removed unless the run lost, doubled or corrupted something)\n  --warmup N       first send N requests the same way, booked and checked but not measured (a cold node compiles its hot paths), over the connections the run then reuses\n  --ceiling        then drive the same requests at a bare Hono app and report node ÷ ceiling\n  --cpu-prof DIR   profile the node under test (the V8 CPU profiler) into DIR and print where its time went\n  --serve-ceiling  (used by --ceiling) serve that bare app on a loopback port until stopped',
    options: { help: COMMON.help, data: COMMON.data, events: { type: 'string' }, batch: { type: 'string' }, concurrency: { type: 'string' }, rate: { type: 'string' }, devices: { type: 'string' }, 'key-type': { type: 'string' }, 'crash-trials': { type: 'string' }, warmup: { type: 'string' }, url: { type: 'string' }, report: { type: 'string' }, ceiling: { type: 'boolean' }, 'cpu-prof': { type: 'string' }, 'serve-ceiling': { type: 'boolean' } },
    async run(values) {
      if (values['serve-ceiling']) {
        await serveCeiling();
        await new Promise(() => {});
      }
      const num = (name: string, d: number, min: number) => {
        const v = values[name];
        if (v === undefined) return d;
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} takes an integer ≥ ${min}`);
        return n;
      };
      const keyType = (values['key-type'] ?? 'ed25519') as KeyType;
      if (!['ed25519', 'sr25519', 'secp256k1'].includes(keyType)) throw new UsageError('--key-type is ed25519, sr25519 or secp256k1');
      const batch = num('batch', 1, 1);
      if (batch > 1000) throw new UsageError('--batch is at most 1000');
      const cpuProf = values['cpu-prof'] as string | undefined;
      if (cpuProf !== undefined && (values.url !== undefined || values['crash-trials'] !== undefined)) {
        throw new UsageError('--cpu-prof profiles a node the bench starts and stops: not with --url or --crash-trials');
      }
      if (cpuProf !== undefined) fs.mkdirSync(path.resolve(cpuProf), { recursive: true });
      const tty = process.stderr.isTTY === true;
      const report = await runBench({
        self: selfCommand([]),
        ...(typeof values.data === 'string' ? { data: values.data } : {}),
        ...(typeof values.url === 'string' ? { url: values.url } : {}),
        events: num('events', 20_000, 1), batch, concurrency: num('concurrency', 32, 1), rate: num('rate', 0, 0),
        devices: num('devices', 16, 1), keyType, crashTrials: num('crash-trials', 0, 0), warmup: num('warmup', 0, 0), ceiling: values.ceiling === true,
        ...(cpuProf !== undefined ? { cpuProf: path.resolve(cpuProf) } : {}),
        progress: (line, final) => process.stderr.write(tty && !final ? `\r${line.padEnd(100)}` : `${line}\n`),
      });
      if (tty) process.stderr.write('\n');
      stdoutLine(reportTable(report));
      const file = (values.report as string | undefined) ?? 'bench-report.json';
      writeFileDurable(path.resolve(file), `${JSON.stringify(report, null, 2)}\n`, 0o644);
      stdoutLine(`report: ${file}`);
      const clean = report.lost !== null ? report.lost === 0 && report.doubled === 0 && report.corruption!.length === 0 : true;
      // A request refused or unanswered means the figures are not those of a
      // healthy node (a run of 401s is fast). Under --crash-trials they are
      // expected: the node is killed mid-load on purpose.
      const failed = report.crashTrials ? 0 : Object.values(report.errors).reduce((n, k) => n + k, 0);
      if (failed > 0) stderrLine(`nexus bench: ${failed} request(s) failed (${Object.entries(report.errors).map(([code, n]) => `${code} ${n}`).join(', ')}): these figures are not a healthy node's`);
      return clean && failed === 0 ? 0 : 1;
    },
  },
  anchor: {
    summary: 'anchor receipts per checkpoint and chain (status), or retry the failed ones now (retry)',
    usage: 'nexus anchor status|retry [--data DIR]',
    options: { ...COMMON },
    async run(values, positionals) {
      const action = positionals[0];
      if (action !== 'status' && action !== 'retry') throw new UsageError('anchor status | anchor retry');
      const d = resolveData(values);
      {
        const res = await adminFetch(d, `/v1/admin/anchors${action === 'retry' ? '/retry' : ''}`, { method: action === 'retry' ? 'POST' : 'GET' });
        if (res) {
          const body = await res.json() as { anchors?: Array<Record<string, unknown>>; retried?: number };
          if (action === 'retry') stdoutLine(`${body.retried} failed receipt(s) queued for retry now`);
          else printAnchors(body.anchors ?? []);
          return res.ok ? 0 : 1;
        }
      }
      if (action === 'retry') {
        stderrLine('nexus anchor retry: the node is not running (failed anchors are retried when it starts)');
        return 1;
      }
      const off = await openOffline(d);
      try {
        const db = off.vault.database.prepare('SELECT size, chain, adapter, state, tx, block, confirmations, attempts, error FROM anchors ORDER BY size DESC, chain LIMIT 200');
        printAnchors(db.all((s) => ({ size: s.int(0), chain: s.text(1), adapter: s.text(2), state: s.text(3), tx: s.textOrNull(4), block: s.isNull(5) ? null : s.int(5), confirmations: s.isNull(6) ? null : s.int(6), attempts: s.int(7), error: s.textOrNull(8) })));
        db.finalize();
      } finally {
        off.close();
      }
      return 0;
    },
  },
  verify: {
    summary: 'full offline audit of a stopped node: integrity, leaves, tree, checkpoints, splits, totals',
    usage: 'nexus verify [--anchors] [--data DIR]',
    options: { ...COMMON, anchors: { type: 'boolean' } },
    async run(values) {
      const d = resolveData(values);
      if (!fs.existsSync(d.vaultFile)) {
        stderrLine(`nexus verify: no vault at ${d.vaultFile}`);
        return 1;
      }
      const off = await openOffline(d);
      const bar = progressBar('verify');
      try {
        const report = auditVault(off.vault, { keyName: off.log.signer.name, publicKey: off.log.signer.publicKey, progress: bar });
        bar.end();
        if (!report.ok) {
          for (const p of report.problems) stderrLine(`FAIL ${p}`);
          stderrLine(`nexus verify: ${report.problems.length} problem(s); first: ${report.first}`);
          return 1;
        }
        stdoutLine(`OK: ${report.entries} entries, ${report.checkpoints} checkpoints, tree and signatures verified`);
        if (values.anchors) return await verifyAnchors(off.vault, off.log, off.config, d);
        return 0;
      } finally {
        off.close();
      }
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

/** A one-line progress bar on a TTY (stderr), nothing otherwise. */
function progressBar(label: string): ((done: number, total: number) => void) & { end(): void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  const fn = (done: number, total: number) => {
    if (!tty) return;
    const now = Date.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const pct = total === 0 ? 1 : done / total;
    const width = 30;
    process.stderr.write(`\r${label} [${'#'.repeat(Math.round(pct * width)).padEnd(width, '.')}] ${done}/${total}`);
  };
  return Object.assign(fn, { end: () => { if (tty) process.stderr.write('\n'); } });
}

/** Opens the stopped node's vault (and its log) for an offline command. */
async function openOffline(d: DataDir): Promise<{ vault: Vault; log: TransparencyLog; config: Config; close(): void }> {
  const config = loadConfig(d);
  const vault = await Vault.open(d.vaultFile);
  const log = new TransparencyLog(vault, config.node.origin, nodeSigner(config.node.origin, loadNodeKey(d)));
  return { vault, log, config, close: () => vault.close() };
}

/** `start --daemon`: the same start in a detached child, logging to the data directory. */
async function startDaemon(d: DataDir): Promise<number> {
  const running = readRuntime(d);
  if (running && alive(running.pid)) {
    stderrLine(`nexus: already running as pid ${running.pid}`);
    return 1;
  }
  fs.rmSync(runtimeFile(d), { force: true });
  const args = argv().filter((a) => a !== '--daemon');
  const cmd = selfCommand(args);
  const out = fs.openSync(path.join(d.logDir, 'daemon.out'), 'a');
  const child = spawnDetached(cmd.file, cmd.args, out);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const r = readRuntime(d);
    if (r && r.pid === child) {
      stdoutLine(JSON.stringify({ event: 'listening', port: r.port, adminPort: r.adminPort, pid: r.pid }));
      return 0;
    }
    if (!alive(child)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  stderrLine(`nexus: the node did not start; see ${path.join(d.logDir, 'daemon.out')}`);
  return 1;
}

/** The supervised tunnel's state (tunnel.json), when `nexus tunnel` is running. */
function readTunnel(d: DataDir): { kind: string; url: string | null; pid: number | null; restarts: number } | null {
  try {
    const t = JSON.parse(fs.readFileSync(path.join(d.dir, 'tunnel.json'), 'utf8'));
    return t.pid && !alive(t.pid) ? null : t;
  } catch {
    return null;
  }
}

function tunnelLine(d: DataDir): string[] {
  const t = readTunnel(d);
  return t ? [`tunnel    ${t.kind}: ${t.url ?? 'starting…'} (restarts ${t.restarts})`] : [];
}

function printAnchors(rows: Array<Record<string, unknown>>): void {
  if (rows.length === 0) {
    stdoutLine('no anchors yet');
    return;
  }
  for (const r of rows) {
    stdoutLine([r.size, r.chain, r.state, r.tx ?? '-', r.block ?? '-', r.confirmations ?? '-', r.error ?? ''].join('\t'));
  }
}

/** Re-reads every confirmed receipt from its chain (or file) and checks the payload. */
async function verifyAnchors(vault: Vault, log: TransparencyLog, config: Config, d: DataDir): Promise<number> {
  const adapters = new Map(buildAnchorAdapters(config.anchors, d.dir).map((a) => [a.chain, a]));
  const stmt = vault.database.prepare("SELECT size, chain, adapter, state, tx, block, confirmations, nonce, attempts, error FROM anchors WHERE state = 'confirmed' ORDER BY size");
  const rows = stmt.all((s) => ({ size: s.int(0), chain: s.text(1), adapter: s.text(2), state: 'confirmed' as const, tx: s.textOrNull(4), block: s.isNull(5) ? null : s.int(5), confirmations: s.isNull(6) ? null : s.int(6), nonce: s.isNull(7) ? null : s.int(7), attempts: s.int(8), error: s.textOrNull(9) }));
  stmt.finalize();
  let bad = 0;
  for (const row of rows) {
    const adapter = adapters.get(row.chain);
    const cp = log.checkpoint(row.size);
    let ok = false;
    let why = '';
    if (!adapter) why = 'no adapter configured for this chain';
    else if (!cp) why = 'checkpoint missing';
    else {
      try {
        ok = await adapter.verify(row, { size: cp.size, note: cp.note });
        if (!ok) why = 'payload not found on chain';
      } catch (e) {
        why = (e as Error).message;
      }
    }
    if (!ok) {
      bad++;
      stderrLine(`FAIL anchor ${row.size} ${row.chain} ${row.tx ?? ''}: ${why}`);
    }
  }
  if (bad > 0) {
    stderrLine(`nexus verify --anchors: ${bad} of ${rows.length} receipts do not check out`);
    return 1;
  }
  stdoutLine(`OK: ${rows.length} anchor receipts re-read and matched`);
  return 0;
}

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
  {
    const call = (method: string, p: string, body?: unknown) =>
      adminFetch(d, p, { method, headers: body ? { 'content-type': 'application/json' } : {}, ...(body ? { body: JSON.stringify(body) } : {}) });
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
