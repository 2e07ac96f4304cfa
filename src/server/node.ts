/**
 * Composition root: a data directory and a config become a running node —
 * vault, group committer, Sentry, public and admin listeners — and a stop()
 * that drains in-flight groups before the vault closes.
 */
import type { Context } from 'hono';
import type { Config } from '../config/config.ts';
import { loadAdminToken, loadNodeKey, loadProxyKey, type DataDir } from '../config/datadir.ts';
import { Vault } from '../vault/vault.ts';
import { GroupCommitter } from '../vault/group-commit.ts';
import { devIdentityVerifier } from '../adapters/identity/dev.ts';
import { signatureVerifier } from '../adapters/identity/signature.ts';
import { loadSr25519 } from '../adapters/identity/keys.ts';
import { ReplayStore } from '../sentry/replay.ts';
import { cloudflareVerifier } from '../adapters/identity/cloudflare.ts';
import { telegramVerifier } from '../adapters/identity/telegram.ts';
import { clientAddress, isLoopbackIp } from '../sentry/ingress.ts';
import { RejectionLog } from '../telemetry/rejections.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { Anchorer } from '../adapters/anchor/anchorer.ts';
import { buildAnchorAdapters, AnchorConfigError } from '../adapters/anchor/registry.ts';
import type { IdentityVerifier } from '../sentry/identity.ts';
import { fs } from '../runtime/fs.ts';
import { listen, peerAddress, type Listener } from '../runtime/serve.ts';
import type { Logger } from '../telemetry/logger.ts';
import { createApp } from './app.ts';
import { createAdminApp } from './admin.ts';
import { TransparencyLog, type CheckpointRecord, type NoteSigner } from '../log/log.ts';
import { verifierKey } from '../log/verify.ts';
import { nodeCrypto } from '../runtime/crypto.ts';
import type { NodeKey } from '../config/datadir.ts';

/** The node key as a note signer; the key name is the origin (C2SP convention). */
export function nodeSigner(name: string, key: NodeKey): NoteSigner {
  return { name, publicKey: key.publicKey, sign: (m) => new Uint8Array(nodeCrypto.sign(null, m, key.privateKey)) };
}

export interface NodeOptions {
  data: DataDir;
  config: Config;
  dev: boolean;
  logger: Logger;
  /** `POST /v1/admin/shutdown` (how `nexus stop` stops a node gracefully on every OS). */
  onShutdownRequest?: () => void;
}

export interface RunningNode {
  port: number;
  adminPort: number;
  vault: Vault;
  log: TransparencyLog;
  anchorer: Anchorer;
  stop(): Promise<void>;
}

/** Thrown for a security setting that must stop the node at start (exit 2). */
export class FailClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FailClosedError';
  }
}

export interface VerifierContext {
  vault: Vault;
  replay: ReplayStore;
}

/**
 * The identity methods this config enables. Fails closed: a method that is
 * half configured, or no method at all, stops the start.
 */
export function buildVerifiers(config: Config, dev: boolean, ctx: VerifierContext): IdentityVerifier[] {
  const verifiers: IdentityVerifier[] = [];
  if (dev) verifiers.push(devIdentityVerifier());
  const sig = config.sentry.signatures;
  if (sig.enabled) {
    const enrolled = new Set(ctx.vault.devices().map((d) => d.did));
    enrolledSets.set(ctx.vault, enrolled);
    verifiers.push(signatureVerifier({ enrollment: sig.enrollment, maxSkewS: sig.max_skew_s, isEnrolled: (did) => enrolled.has(did), replay: ctx.replay }));
  }
  const cf = config.sentry.cloudflare;
  if (cf) {
    if (!cf.team_domain || !cf.aud) throw new FailClosedError('[sentry.cloudflare] needs both team_domain and aud; refusing to start half-configured');
    if (!/^https:\/\/[^/]+$/.test(cf.team_domain.replace(/\/+$/, '')) && !cf.jwks_url) throw new FailClosedError('[sentry.cloudflare] team_domain must be https://<team>.cloudflareaccess.com');
    verifiers.push(cloudflareVerifier({ teamDomain: cf.team_domain, aud: cf.aud, ...(cf.jwks_url ? { jwksUrl: cf.jwks_url } : {}) }));
  }
  const tg = config.sentry.telegram;
  if (tg) {
    if (!tg.bot_token || !/^[0-9]+:[A-Za-z0-9_-]{20,}$/.test(tg.bot_token)) throw new FailClosedError('[sentry.telegram] needs a bot_token ("<id>:<secret>"); refusing to start half-configured');
    verifiers.push(telegramVerifier({ botToken: tg.bot_token, maxAgeS: tg.max_age_s ?? 3600 }));
  }
  if (verifiers.length === 0) {
    throw new FailClosedError('no identity method is configured; refusing to start an open node (enable [sentry.signatures] or use --dev)');
  }
  return verifiers;
}

/** The enrolled-device set each vault's verifier reads; the admin API keeps it current. */
const enrolledSets = new WeakMap<Vault, Set<string>>();

/** Checks the settings that must stop a start, before anything is opened. */
export function checkSecuritySettings(config: Config, dev: boolean): void {
  if (!config.sentry.signatures.enabled && !dev && !config.sentry.cloudflare && !config.sentry.telegram) {
    throw new FailClosedError('no identity method is configured; refusing to start an open node (enable [sentry.signatures] or use --dev)');
  }
}

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const { config, data, logger } = options;
  checkSecuritySettings(config, options.dev);
  const nodeKey = loadNodeKey(data);
  const adminToken = loadAdminToken(data);
  if (options.dev) logger.warn('dev_identity_enabled', { detail: 'X-Nexus-Dev-Identity is accepted from loopback; never run --dev in production' });

  const metrics = new Metrics();
  const vault = await Vault.open(data.vaultFile, { onFsync: (seconds, kind) => metrics.vaultFsyncSeconds.observe({ kind }, seconds) });
  // sr25519 (did:peaq) loads on first use; warm it now when such a device may come.
  const sig = config.sentry.signatures;
  if (sig.enabled && (sig.enrollment === 'open' || vault.devices().some((d) => d.did.startsWith('did:peaq:')))) {
    try {
      await loadSr25519();
    } catch (e) {
      vault.close();
      throw e;
    }
  }
  let log: TransparencyLog;
  try {
    log = new TransparencyLog(vault, config.node.origin, nodeSigner(config.node.origin, nodeKey));
    const { repaired } = log.open();
    if (repaired > 0) logger.warn('tree_repaired', { leaves: repaired, detail: 'ledger rows committed before a crash were added to the Merkle tree' });
  } catch (e) {
    vault.close();
    throw e;
  }
  let anchorer: Anchorer;
  try {
    const adapters = buildAnchorAdapters(config.anchors, data.dir);
    anchorer = new Anchorer({ vault, log, adapters, intervalS: config.anchoring.interval_s, logger });
    log.anchorsFor = (size) => anchorer.receipts(size);
  } catch (e) {
    vault.close();
    if (e instanceof AnchorConfigError) throw new FailClosedError(e.message);
    throw e;
  }
  const replay = new ReplayStore();
  replay.load(vault.liveNonces(Date.now()));
  let verifiers: IdentityVerifier[];
  try {
    verifiers = buildVerifiers(config, options.dev, { vault, replay });
  } catch (e) {
    vault.close();
    throw e;
  }
  const rejections = new RejectionLog();
  const committer = new GroupCommitter(vault, {
    commitWaitMs: config.vault.commit_wait_ms,
    integrate: (leaves, count) => log.tree.integrate(leaves, count),
    onCommitted: (b) => {
      metrics.eventsBooked.inc(b.entries.length);
      metrics.batchEvents.observe(b.entries.length);
      metrics.commitSeconds.observe(b.seconds);
    },
    onInvariantViolation: (e) => logger.error('split_invariant_violated', { amount: e.amount, detail: e.message }),
    onSyncFailure: (e) => logger.error('vault_sync_failed', { error: e.message, detail: 'fsync failed: the node refuses new events until it is restarted on a healthy disk' }),
  });
  const startedAt = Date.now();

  const believe = clientAddress({ mode: config.ingress.mode, trustedProxies: config.ingress.trusted_proxies });
  const peer = (c: Context) => {
    const socket = peerAddress(c);
    const headers = c.req.raw.headers;
    const clientIp = believe(socket, headers);
    // Loopback means the request really started on this machine: a local
    // tunnel or proxy also connects from loopback, so forwarded requests never count.
    const forwarded = headers.has('cf-connecting-ip') || headers.has('x-forwarded-for') || headers.has('forwarded');
    return { clientIp, loopback: isLoopbackIp(socket) && isLoopbackIp(clientIp) && !forwarded };
  };
  const app = createApp({
    vault,
    committer,
    log,
    anchors: anchorer,
    verifiers,
    node: { origin: config.node.origin, keyName: config.node.origin, publicKey: Buffer.from(nodeKey.publicKey).toString('base64'), verifierKey: verifierKey(config.node.origin, nodeKey.publicKey) },
    bodyLimitBytes: config.limits.body_bytes,
    peer,
    onRejection: (r) => {
      logger.warn('sentry_rejection', { ...r });
      metrics.rejections.inc({ code: r.code });
      rejections.add(r);
    },
    rateLimits: { perIp: config.limits.rate_per_ip, perIdentity: config.limits.rate_per_identity },
    proxy: {
      routes: config.routes.map((r) => ({ prefix: r.prefix, upstream: r.upstream, stripPrefix: r.strip_prefix, ...(r.timeout_ms ? { timeoutMs: r.timeout_ms } : {}) })),
      key: loadProxyKey(data),
      timeoutMs: 30_000,
    },
    onError: (e, c) => logger.error('request_failed', { route: `${c.req.method} ${c.req.path}`, error: (e as Error)?.stack ?? String(e) }),
    ready: () => {
      if (committer.failure) return false;
      try {
        fs.accessSync(data.dir, fs.constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
  });
  const enrolled = enrolledSets.get(vault) ?? new Set<string>();
  const admin = createAdminApp({
    token: adminToken,
    vault,
    log,
    anchors: anchorer,
    rejections,
    metrics: async () => {
      metrics.ledgerEntries.set(vault.size);
      metrics.checkpointSize.set(log.latest()?.size ?? 0);
      metrics.anchorReceipts.reset();
      for (const r of anchorer.counts()) metrics.anchorReceipts.set({ chain: r.chain, state: r.state }, r.n);
      return { text: await metrics.text(), contentType: metrics.contentType };
    },
    onDevicesChanged: () => {
      enrolled.clear();
      for (const d of vault.devices()) enrolled.add(d.did);
    },
    status: () => ({
      pid: process.pid,
      origin: config.node.origin,
      entries: vault.size,
      checkpoint: log.latest() ? { size: log.latest()!.size, ts: log.latest()!.ts } : null,
      anchors: anchorer.summary(),
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
      port: publicListener?.port,
      adminPort: adminListener?.port,
    }),
    shutdown: () => options.onShutdownRequest?.(),
  });

  let publicListener: Listener | undefined;
  let adminListener: Listener | undefined;
  try {
    publicListener = await listen(app.fetch, config.listen.host, config.listen.port);
    adminListener = await listen(admin.fetch, config.listen.admin_host, config.listen.admin_port);
  } catch (e) {
    await publicListener?.close();
    await committer.close();
    vault.close();
    throw e;
  }
  const reportCut = (cp: CheckpointRecord | undefined) => {
    if (cp) logger.info('checkpoint', { size: cp.size, root: Buffer.from(cp.root).toString('hex') });
  };
  const reportCutFailure = (e: unknown) => logger.error('checkpoint_failed', { error: String(e) });
  // The row's fsync runs on the thread pool; a tick while it is still running does nothing.
  const cutCheckpoint = () => {
    if (!log.cutting) void log.cutInBackground().then(reportCut, reportCutFailure);
  };
  const checkpointTimer = setInterval(cutCheckpoint, config.log.checkpoint_interval_ms);
  checkpointTimer.unref?.();
  anchorer.start();
  logger.info('node_started', { origin: config.node.origin, entries: vault.size, port: publicListener.port, adminPort: adminListener.port });

  let stopping: Promise<void> | undefined;
  return {
    port: publicListener.port,
    adminPort: adminListener.port,
    vault,
    log,
    anchorer,
    stop() {
      stopping ??= (async () => {
        // Stop taking connections, let in-flight requests reach the committer,
        // finish their groups, then close the vault.
        const closing = Promise.all([publicListener!.close(), adminListener!.close()]);
        await committer.drain();
        await closing;
        await committer.close();
        clearInterval(checkpointTimer);
        // A last checkpoint over everything booked (after any cut still being synced).
        await log.cutInBackground().then(reportCut, reportCutFailure);
        await anchorer.stop();
        vault.close();
        logger.info('node_stopped', { entries: vault.size });
      })();
      return stopping;
    },
  };
}
