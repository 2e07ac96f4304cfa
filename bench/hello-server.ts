// The ceiling: a bare Hono app on @hono/node-server answering 201 "hello" to
// every POST, so the bench can say how close the node comes to the framework's
// own limit on this machine.
import { Hono } from 'hono';
import { serve } from '@hono/node-server';

const app = new Hono();
app.post('*', async (c) => {
  await c.req.arrayBuffer();
  return c.json({ hello: 'world' }, 201);
});
serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: info.port })}\n`);
});
