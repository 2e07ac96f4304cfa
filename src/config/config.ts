/**
 * nexus.toml (SPEC §8): parsed with smol-toml, then checked against a schema
 * that knows every key. An unknown key, a wrong type or a bad value is an error
 * naming the key and its line — a typo must never silently fall back to a
 * default (fail closed).
 */
import { parse, TomlError } from 'smol-toml';

export interface AnchorConfig {
  type: 'file' | 'evm';
  path?: string;
  chain?: string;
  chain_id?: number;
  rpc_url?: string;
  key_file?: string;
  confirmations?: number;
  /** Replace a transaction still unmined after this many seconds (same nonce, higher gas price). */
  stuck_after_s?: number;
}

export interface RouteConfig {
  prefix: string;
  upstream: string;
  strip_prefix: boolean;
  /** Time until the upstream's response headers (default 30 s); 504 after it. */
  timeout_ms?: number;
}

export interface Config {
  node: { origin: string };
  listen: { host: string; port: number; admin_host: string; admin_port: number };
  ingress: { mode: 'direct' | 'cloudflare' | 'proxy'; trusted_proxies: string[] };
  sentry: {
    signatures: { enabled: boolean; enrollment: 'allowlist' | 'open'; max_skew_s: number };
    cloudflare?: { team_domain?: string; aud?: string; jwks_url?: string };
    telegram?: { bot_token?: string; max_age_s?: number };
  };
  limits: { body_bytes: number; rate_per_identity: number; rate_per_ip: number };
  log: { checkpoint_interval_ms: number };
  vault: { commit_wait_ms: number };
  anchoring: { interval_s: number };
  anchors: AnchorConfig[];
  routes: RouteConfig[];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function defaultConfig(origin: string): Config {
  return {
    node: { origin },
    listen: { host: '127.0.0.1', port: 8787, admin_host: '127.0.0.1', admin_port: 8788 },
    ingress: { mode: 'direct', trusted_proxies: [] },
    sentry: { signatures: { enabled: true, enrollment: 'allowlist', max_skew_s: 300 } },
    limits: { body_bytes: 16384, rate_per_identity: 1000, rate_per_ip: 200 },
    log: { checkpoint_interval_ms: 1000 },
    vault: { commit_wait_ms: 5 },
    anchoring: { interval_s: 60 },
    anchors: [{ type: 'file', path: 'anchors.jsonl' }],
    routes: [],
  };
}

/** The file `nexus init` writes: the defaults, spelled out so operators can edit them. */
export function defaultConfigText(origin: string): string {
  return `# Nexus node configuration. Unknown keys are an error; flags override these.
[node]
origin = ${JSON.stringify(origin)}   # the checkpoint origin line; keep it stable

[listen]
host = "127.0.0.1"        # public API; set "0.0.0.0" to open it to the network
port = 8787
admin_host = "127.0.0.1"  # admin API and dashboard; keep on loopback
admin_port = 8788

[ingress]
mode = "direct"           # direct | cloudflare | proxy
trusted_proxies = []      # CIDRs, mode = "proxy" only

[sentry.signatures]
enabled = true            # RFC 9421 device signatures
enrollment = "allowlist"  # allowlist | open
max_skew_s = 300

[limits]
body_bytes = 16384
rate_per_identity = 1000  # per second
rate_per_ip = 200         # per second

[log]
checkpoint_interval_ms = 1000

[vault]
commit_wait_ms = 5        # a group commit may wait this long for requests already on their way (0: never)

[anchoring]
interval_s = 60

[[anchors]]
type = "file"
path = "anchors.jsonl"
`;
}

type Kind = 'string' | 'int' | 'bool' | 'strings';
type Shape = { [key: string]: Kind | Shape | [Shape] };

const SCHEMA: Shape = {
  node: { origin: 'string' },
  listen: { host: 'string', port: 'int', admin_host: 'string', admin_port: 'int' },
  ingress: { mode: 'string', trusted_proxies: 'strings' },
  sentry: {
    signatures: { enabled: 'bool', enrollment: 'string', max_skew_s: 'int' },
    cloudflare: { team_domain: 'string', aud: 'string', jwks_url: 'string' },
    telegram: { bot_token: 'string', max_age_s: 'int' },
  },
  limits: { body_bytes: 'int', rate_per_identity: 'int', rate_per_ip: 'int' },
  log: { checkpoint_interval_ms: 'int' },
  vault: { commit_wait_ms: 'int' },
  anchoring: { interval_s: 'int' },
  anchors: [{ type: 'string', path: 'string', chain: 'string', chain_id: 'int', rpc_url: 'string', key_file: 'string', confirmations: 'int', stuck_after_s: 'int' }],
  routes: [{ prefix: 'string', upstream: 'string', strip_prefix: 'bool', timeout_ms: 'int' }],
};

function lineOf(text: string, key: string): string {
  const lines = text.split('\n');
  const re = new RegExp(`^\\s*(\\[+\\s*)?([A-Za-z0-9_.]*\\.)?${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*(=|\\])`);
  const i = lines.findIndex((l) => re.test(l));
  return i < 0 ? '' : ` (line ${i + 1})`;
}

function check(value: unknown, shape: Shape, where: string, text: string, file: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${file}: [${where}] must be a table${lineOf(text, where.split('.').pop() ?? where)}`);
  }
  for (const [key, v] of Object.entries(value)) {
    const path = where ? `${where}.${key}` : key;
    const kind = shape[key];
    if (kind === undefined) throw new ConfigError(`${file}: unknown key "${path}"${lineOf(text, key)}`);
    if (Array.isArray(kind)) {
      if (!Array.isArray(v)) throw new ConfigError(`${file}: "${path}" must be an array of tables ([[${path}]])${lineOf(text, key)}`);
      v.forEach((item, i) => check(item, kind[0], `${path}[${i}]`, text, file));
    } else if (typeof kind === 'object') {
      check(v, kind, path, text, file);
    } else {
      const ok = kind === 'string' ? typeof v === 'string'
        : kind === 'int' ? (typeof v === 'number' && Number.isSafeInteger(v)) || typeof v === 'bigint'
        : kind === 'bool' ? typeof v === 'boolean'
        : Array.isArray(v) && v.every((s) => typeof s === 'string');
      if (!ok) throw new ConfigError(`${file}: "${path}" must be ${kind === 'int' ? 'an integer' : kind === 'strings' ? 'an array of strings' : `a ${kind}`}${lineOf(text, key)}`);
    }
  }
}

function merge<T>(base: T, over: unknown): T {
  if (typeof over !== 'object' || over === null || Array.isArray(over)) return over as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = typeof b === 'object' && b !== null && !Array.isArray(b) ? merge(b, v) : v;
  }
  return out as T;
}

function oneOf<T extends string>(v: string, allowed: readonly T[], path: string, file: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(`${file}: "${path}" must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

function port(v: number, path: string, file: string): number {
  if (!(v >= 0 && v <= 65535)) throw new ConfigError(`${file}: "${path}" must be a port from 0 to 65535, got ${v}`);
  return v;
}

function positive(v: number, path: string, file: string): number {
  if (!(v >= 1)) throw new ConfigError(`${file}: "${path}" must be at least 1, got ${v}`);
  return v;
}

/** Parses and validates nexus.toml text; `file` names it in errors. */
export function parseConfig(text: string, file: string, fallbackOrigin: string): Config {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    if (e instanceof TomlError) throw new ConfigError(`${file}: line ${e.line}: ${e.message.split('\n')[0]}`);
    throw e;
  }
  check(raw, SCHEMA, '', text, file);
  const hasAnchors = typeof raw === 'object' && raw !== null && 'anchors' in raw;
  const cfg = merge(defaultConfig(fallbackOrigin), raw);
  if (!hasAnchors) cfg.anchors = defaultConfig(fallbackOrigin).anchors;
  cfg.ingress.mode = oneOf(cfg.ingress.mode, ['direct', 'cloudflare', 'proxy'] as const, 'ingress.mode', file);
  cfg.sentry.signatures.enrollment = oneOf(cfg.sentry.signatures.enrollment, ['allowlist', 'open'] as const, 'sentry.signatures.enrollment', file);
  port(cfg.listen.port, 'listen.port', file);
  port(cfg.listen.admin_port, 'listen.admin_port', file);
  positive(cfg.limits.body_bytes, 'limits.body_bytes', file);
  positive(cfg.limits.rate_per_identity, 'limits.rate_per_identity', file);
  positive(cfg.limits.rate_per_ip, 'limits.rate_per_ip', file);
  positive(cfg.log.checkpoint_interval_ms, 'log.checkpoint_interval_ms', file);
  if (!(cfg.vault.commit_wait_ms >= 0 && cfg.vault.commit_wait_ms <= 1000)) throw new ConfigError(`${file}: "vault.commit_wait_ms" must be from 0 to 1000, got ${cfg.vault.commit_wait_ms}`);
  positive(cfg.anchoring.interval_s, 'anchoring.interval_s', file);
  positive(cfg.sentry.signatures.max_skew_s, 'sentry.signatures.max_skew_s', file);
  // The origin is also the checkpoint key name, which may hold no spaces or "+" (c2sp.org/signed-note).
  if (!/^[^\s+]{1,200}$/.test(cfg.node.origin)) throw new ConfigError(`${file}: "node.origin" must be 1 to 200 characters without spaces or "+"`);
  cfg.anchors.forEach((a, i) => {
    a.type = oneOf(a.type, ['file', 'evm'] as const, `anchors[${i}].type`, file);
  });
  cfg.routes.forEach((r, i) => {
    if (!r.prefix?.startsWith('/') || r.prefix === '/') throw new ConfigError(`${file}: "routes[${i}].prefix" must start with "/" and not be "/" alone`);
    if (/^\/(v1|api|healthz|readyz|metrics)(\/|$)/.test(r.prefix)) throw new ConfigError(`${file}: "routes[${i}].prefix" ${r.prefix} would shadow the node's own API`);
    if (!/^https?:\/\//.test(r.upstream ?? '')) throw new ConfigError(`${file}: "routes[${i}].upstream" must be an http(s) URL`);
    r.strip_prefix ??= false;
  });
  return cfg;
}
