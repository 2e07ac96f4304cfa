/**
 * A small closed-loop load generator on undici: `concurrency` workers, each
 * sending its next request when the last one returns, for `seconds`.
 */
import { Pool } from 'undici';

export interface LoadResult {
  requests: number;
  events: number;
  errors: number;
  seconds: number;
  rps: number;
  eventsPerS: number;
  p50: number;
  p99: number;
}

export interface LoadOptions {
  url: string;
  concurrency: number;
  seconds: number;
  eventsPerRequest: number;
  /** Makes request i: path, headers, body; undefined ends the run (pre-signed requests used up). */
  request: (i: number) => { path: string; headers: Record<string, string>; body: string | Uint8Array } | undefined;
  expectStatus?: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(o.url, { connections: o.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let i = 0;
  let errors = 0;
  const deadline = performance.now() + o.seconds * 1000;
  const start = performance.now();
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (performance.now() < deadline) {
      const req = o.request(i++);
      if (!req) return;
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path: req.path, headers: req.headers, body: req.body });
        await res.body.dump();
        if (res.statusCode !== (o.expectStatus ?? 201)) errors++;
        else latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    events: latencies.length * o.eventsPerRequest,
    errors,
    seconds,
    rps: latencies.length / seconds,
    eventsPerS: (latencies.length * o.eventsPerRequest) / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}
