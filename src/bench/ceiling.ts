/**
 * The ceiling `nexus bench --ceiling` measures the node against: a bare Hono
 * app on the same server adapter, answering 201 with a small JSON body to
 * every POST after reading the body — no identity, no vault. Driven with the
 * same pre-signed requests right after the node, it says how close the node
 * comes to what the framework itself does on this machine.
 */
import { Hono } from 'hono';
import { listen, type Listener } from '../runtime/serve.ts';

export function ceilingApp(): Hono {
  const app = new Hono();
  app.post('*', async (c) => {
    await c.req.arrayBuffer();
    return c.json({ hello: 'world' }, 201);
  });
  return app;
}

/** Serves the ceiling on loopback and prints the same "listening" line as the node. */
export async function serveCeiling(port = 0): Promise<Listener> {
  const listener = await listen(ceilingApp().fetch, '127.0.0.1', port);
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: listener.port, adminPort: 0 })}\n`);
  return listener;
}
