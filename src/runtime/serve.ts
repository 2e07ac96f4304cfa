/**
 * Serving a fetch handler: @hono/node-server on Node, Deno.serve under Deno.
 * Both give back the bound port and a close() that stops accepting new
 * connections and waits for open requests to finish.
 */
import type { Context } from 'hono';
import { serve as nodeServe } from '@hono/node-server';
import { getConnInfo as nodeConnInfo } from '@hono/node-server/conninfo';

export interface Listener {
  port: number;
  host: string;
  close(): Promise<void>;
}

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

interface DenoLike {
  serve(options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void }, handler: (req: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>): { finished: Promise<void>; shutdown(): Promise<void> };
}

const deno = (globalThis as { Deno?: DenoLike }).Deno;

export const runtimeName = deno ? 'deno' : 'node';

export function listen(fetch: Fetch, host: string, port: number): Promise<Listener> {
  if (deno) {
    return new Promise((resolve) => {
      const server = deno.serve(
        { port, hostname: host, onListen: (addr) => resolve({ port: addr.port, host, close: () => server.shutdown() }) },
        (req, info) => fetch(req, { remoteAddr: info.remoteAddr.hostname }),
      );
    });
  }
  return new Promise((resolve, reject) => {
    const server = nodeServe({ fetch, port, hostname: host }, (info) => {
      resolve({
        port: info.port,
        host,
        close: () => new Promise<void>((done) => {
          const http = server as unknown as { closeIdleConnections?: () => void; closeAllConnections?: () => void };
          server.close(() => done());
          http.closeIdleConnections?.();
          // Long-lived responses (the dashboard's event stream) would hold the close forever.
          setTimeout(() => http.closeAllConnections?.(), 2000).unref();
        }),
      });
    });
    server.once('error', reject);
  });
}

/** The socket peer address of a request, whichever runtime serves it. */
export function peerAddress(c: Context): string {
  if (deno) return (c.env as { remoteAddr?: string } | undefined)?.remoteAddr ?? '';
  try {
    return nodeConnInfo(c).remote.address ?? '';
  } catch {
    return '';
  }
}
