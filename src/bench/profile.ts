/**
 * Where a process spent its time, from a V8 `.cpuprofile` (what `node
 * --cpu-prof` writes): self time per function, and per kind of work. `nexus
 * bench --cpu-prof DIR` prints this for the node under test, so an operator
 * sees what bounds their hardware without opening DevTools.
 */

/** The parts of the Chrome DevTools CPU profile format this reads. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

export type WorkKind = 'javascript' | 'wasm' | 'native' | 'gc' | 'idle';

export interface ProfileSummary {
  totalMs: number;
  /** Functions by self time, largest first. */
  top: Array<{ name: string; where: string; kind: WorkKind; ms: number; share: number }>;
  /** Self time per kind of work (shares of the total). */
  kinds: Record<WorkKind, number>;
}

function kindOf(functionName: string, url: string): WorkKind {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (url.startsWith('wasm://')) return 'wasm';
  // System calls (fsync, read, writev …) and V8's own work have no script.
  if (url === '') return 'native';
  return 'javascript';
}

/** The nearest named caller outside Node's own modules (fsync ← jSync, not ← fsyncSync). */
function callerOf(id: number, byId: Map<number, CpuProfile['nodes'][number]['callFrame']>, parentOf: Map<number, number>): string | undefined {
  let at = parentOf.get(id);
  for (let hops = 0; at !== undefined && hops < 8; hops++) {
    const f = byId.get(at)!;
    if (f.functionName.startsWith('(')) return undefined; // (root), (program): no caller of ours
    if (f.functionName !== '' && !f.url.startsWith('node:')) return f.functionName;
    at = parentOf.get(at);
  }
  return undefined;
}

export function summariseProfile(profile: CpuProfile, count = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  // Self time per profile node first; each sampled node is then named once.
  const usOf = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const us = profile.timeDeltas[i] ?? 0;
    if (!byId.has(id) || us <= 0) continue;
    total += us;
    usOf.set(id, (usOf.get(id) ?? 0) + us);
  }
  const self = new Map<string, { name: string; where: string; kind: WorkKind; us: number }>();
  const kinds: Record<WorkKind, number> = { javascript: 0, wasm: 0, native: 0, gc: 0, idle: 0 };
  for (const [id, us] of usOf) {
    const frame = byId.get(id)!;
    const name = frame.functionName || '(anonymous)';
    const kind = kindOf(frame.functionName, frame.url);
    // A script's file and line say enough; node: and wasm: names stay whole.
    // A native call (fsync, a crypto job's run) is told apart by its caller.
    const caller = kind === 'native' ? callerOf(id, byId, parentOf) : undefined;
    const where = frame.url
      ? `${frame.url.startsWith('file:') ? frame.url.replace(/^.*\//, '') : frame.url}:${frame.lineNumber + 1}`
      : caller ? `from ${caller}` : '';
    const key = `${name}\u0000${where}`;
    const row = self.get(key) ?? { name, where, kind, us: 0 };
    row.us += us;
    self.set(key, row);
    kinds[kind] += us;
  }
  const share = (us: number) => (total > 0 ? us / total : 0);
  return {
    totalMs: total / 1000,
    top: [...self.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, count)
      .map((r) => ({ name: r.name, where: r.where, kind: r.kind, ms: r.us / 1000, share: share(r.us) })),
    kinds: Object.fromEntries(Object.entries(kinds).map(([k, us]) => [k, share(us)])) as Record<WorkKind, number>,
  };
}
