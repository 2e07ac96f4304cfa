/** @jsxImportSource hono/jsx */
/** GET /docs: an API reference rendered from the same registry as /openapi.json (no CDN, no script). */
import type { FC } from 'hono/jsx';
import type { RouteDoc } from './openapi.ts';

const css = `body{font:14px/1.5 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:24px;color:#1b2733}
h1{margin:0 0 4px}h2{margin:28px 0 8px;text-transform:capitalize;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.op{border:1px solid #dde3ea;border-radius:6px;margin:10px 0;padding:10px 14px}
.m{display:inline-block;min-width:48px;font-weight:700;text-transform:uppercase}.get{color:#1f6feb}.post{color:#1a7f37}
code,pre{font-family:ui-monospace,monospace;font-size:12.5px}pre{background:#f6f8fa;padding:8px;border-radius:4px;overflow:auto}
.auth{font-size:12px;color:#9a6700;margin-left:8px}.muted{color:#57606a}`;

export const ApiReference: FC<{ docs: RouteDoc[]; version: string; nonce: string }> = ({ docs, version, nonce }) => {
  const tags = [...new Set(docs.map((d) => d.tag))];
  return (
    <html lang="en">
      <head><meta charset="utf-8" /><title>Nexus API</title><style nonce={nonce}>{css}</style></head>
      <body>
        <h1>Nexus API</h1>
        <p class="muted">version {version} · machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1) · errors are RFC 9457 <code>application/problem+json</code> with a stable <code>code</code></p>
        {tags.map((tag) => (
          <section>
            <h2>{tag}</h2>
            {docs.filter((d) => d.tag === tag).map((d) => (
              <div class="op">
                <span class={`m ${d.method}`}>{d.method}</span> <code>{d.path.replace(/:([A-Za-z_]+)/g, '{$1}')}</code>
                {d.auth && <span class="auth">identity required</span>}
                <div>{d.summary}</div>
                {d.query && <div class="muted">query: {Object.entries(d.query).map(([k, q]) => <span><code>{k}</code> — {q.description}; </span>)}</div>}
                {d.body && <pre>{JSON.stringify(d.body, null, 2)}</pre>}
                <div class="muted">responses: {Object.entries(d.responses).map(([status, r]) => <span><code>{status}</code> {r.description}; </span>)} other: problem+json</div>
              </div>
            ))}
          </section>
        ))}
      </body>
    </html>
  );
};
