/**
 * V8's CPU profiler for this process, through node:inspector: the same
 * sampler as `node --cpu-prof`, but it needs no V8 flag, so the single
 * executables (which take none, and Node refuses --cpu-prof in NODE_OPTIONS)
 * can profile themselves too. `nexus start` uses it when NEXUS_CPU_PROFILE
 * names a file; `nexus bench --cpu-prof` sets that for the node under test.
 */

/** Starts sampling (every 1 ms, as --cpu-prof does); the function returned stops and gives the .cpuprofile JSON. */
export async function startCpuProfile(): Promise<() => Promise<string>> {
  const inspector = await import('node:inspector');
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  try {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 1000 });
    await post('Profiler.start');
  } catch (e) {
    session.disconnect();
    throw new Error(`NEXUS_CPU_PROFILE is set, but this runtime cannot profile itself: ${(e as Error)?.message ?? String(e)}`);
  }
  return async () => {
    try {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      return JSON.stringify(profile);
    } finally {
      session.disconnect();
    }
  };
}
