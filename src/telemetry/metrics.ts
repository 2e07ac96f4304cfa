/**
 * Prometheus metrics (prom-client), one registry per node so several nodes in
 * one process (tests) never mix their numbers.
 */
import client from 'prom-client';

/** Seconds, from half a millisecond to a second: commit and fsync latencies. */
const SECONDS_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1];

export class Metrics {
  readonly registry = new client.Registry();
  readonly rejections = new client.Counter({ name: 'nexus_sentry_rejections_total', help: 'Requests rejected by the Sentry, by code', labelNames: ['code'] as const, registers: [this.registry] });
  readonly eventsBooked = new client.Counter({ name: 'nexus_events_booked_total', help: 'Ledger entries committed', registers: [this.registry] });
  readonly batchEvents = new client.Histogram({ name: 'nexus_commit_group_events', help: 'Entries per group commit', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192], registers: [this.registry] });
  readonly commitSeconds = new client.Histogram({ name: 'nexus_commit_duration_seconds', help: 'Group commit time, transaction and fsync included', buckets: SECONDS_BUCKETS, registers: [this.registry] });
  // etcd's wal_fsync_duration_seconds, for the vault: every answer waits for one.
  readonly vaultFsyncSeconds = new client.Histogram({ name: 'nexus_vault_fsync_duration_seconds', help: 'Vault fsyncs on the thread pool, dispatch to return (a wait for a free pool thread included), by what they made durable (commit: a group of events; checkpoint: WAL pages copied into the database)', labelNames: ['kind'] as const, buckets: [...SECONDS_BUCKETS, 2.5], registers: [this.registry] });
  readonly checkpointSize = new client.Gauge({ name: 'nexus_checkpoint_size', help: 'Tree size of the latest signed checkpoint', registers: [this.registry] });
  readonly anchorReceipts = new client.Gauge({ name: 'nexus_anchor_receipts', help: 'Anchor receipts by chain and state', labelNames: ['chain', 'state'] as const, registers: [this.registry] });
  readonly ledgerEntries = new client.Gauge({ name: 'nexus_ledger_entries', help: 'Entries in the ledger', registers: [this.registry] });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (!(options.processMetrics ?? true)) return;
    // GC pauses in the same buckets as the fsyncs: a bench's slow second is one or the other.
    client.collectDefaultMetrics({ register: this.registry, prefix: 'nexus_', gcDurationBuckets: SECONDS_BUCKETS });
    // The whole request path runs on the main thread: how busy it is, more than the
    // cores, says how close the node is to its limit (Node's event loop utilisation).
    const elu = (performance as { eventLoopUtilization?: () => { active: number } }).eventLoopUtilization?.bind(performance);
    if (!elu) return;
    let counted = 0;
    new client.Counter({
      name: 'nexus_eventloop_active_seconds_total', help: 'Time the main thread (the event loop) spent busy', registers: [this.registry],
      collect() {
        const active = elu().active / 1000;
        this.inc(active - counted);
        counted = active;
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** One unlabelled sample's value in Prometheus text (what /metrics serves); NaN when absent. */
export function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** Cumulative bucket counts of a Prometheus histogram in its text, per value of one label. */
export function histogramBuckets<K extends string>(text: string, name: string, label: string, values: readonly K[]): Record<K, Map<number, number>> {
  const out = Object.fromEntries(values.map((v) => [v, new Map<number, number>()])) as Record<K, Map<number, number>>;
  const line = new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const [, labels, count] of text.matchAll(line)) {
    const l = Object.fromEntries([...labels!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const buckets = out[l[label] as K];
    if (!buckets || l.le === undefined) continue;
    buckets.set(l.le === '+Inf' ? Infinity : Number(l.le), Number(count));
  }
  return out;
}
