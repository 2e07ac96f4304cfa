/** @jsxImportSource hono/jsx */
/**
 * The operator's dashboard (admin listener, GET /): server-rendered with
 * hono/jsx, no front-end build. Totals, recent events, checkpoints with
 * per-chain anchor state, and a live feed of Sentry rejections over
 * server-sent events (the only script on the page, allowed by its CSP nonce).
 */
import type { FC } from 'hono/jsx';
import type { Rejection } from '../sentry/sentry.ts';

export interface DashboardData {
  origin: string;
  totals: { entries: number; amount: string; creator: string; pool: string; fee: string };
  events: Array<{ seq: number; ts: number; subject: string; beneficiary: string; amount: string; creator: string; pool: string; fee: string }>;
  checkpoints: Array<{ size: number; ts: number; root: string; anchors: Array<{ chain: string; state: string; tx: string | null }> }>;
  rejections: Rejection[];
  rejectionsTotal: number;
}

const css = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#0f1419;color:#e6e6e6}
header{padding:14px 24px;background:#18212b;border-bottom:1px solid #2a3745;display:flex;gap:16px;align-items:baseline}
h1{font-size:18px;margin:0} h2{font-size:15px;margin:24px 0 8px;color:#9fb3c8}
main{padding:0 24px 24px;max-width:1200px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}
.card{background:#18212b;border:1px solid #2a3745;border-radius:8px;padding:12px 16px;min-width:150px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.card span{color:#9fb3c8;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;background:#18212b;border:1px solid #2a3745;border-radius:8px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #24303c;font-variant-numeric:tabular-nums;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:320px}
th{color:#9fb3c8;font-weight:600;font-size:12px}
.confirmed{color:#5fd38d}.submitted,.queued{color:#e5c07b}.failed{color:#ff6b6b}
.muted{color:#7f8c99}
`;

const short = (s: string, n = 28) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export const Dashboard: FC<{ data: DashboardData; nonce: string }> = ({ data, nonce }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <title>Nexus · {data.origin}</title>
      <style nonce={nonce}>{css}</style>
    </head>
    <body>
      <header><h1>Nexus</h1><span class="muted">{data.origin}</span></header>
      <main>
        <div class="cards">
          <div class="card"><span>Entries</span><b id="entries">{data.totals.entries}</b></div>
          <div class="card"><span>Amount</span><b id="amount">{data.totals.amount}</b></div>
          <div class="card"><span>Creator (60%)</span><b id="creator">{data.totals.creator}</b></div>
          <div class="card"><span>Pool (30%)</span><b id="pool">{data.totals.pool}</b></div>
          <div class="card"><span>Fee (10%)</span><b id="fee">{data.totals.fee}</b></div>
          <div class="card"><span>Rejections</span><b id="rejections-total">{data.rejectionsTotal}</b></div>
        </div>

        <h2>Recent events</h2>
        <table id="events">
          <thead><tr><th>seq</th><th>time (UTC)</th><th>subject</th><th>beneficiary</th><th>amount</th><th>creator</th><th>pool</th><th>fee</th></tr></thead>
          <tbody>
            {data.events.map((e) => (
              <tr><td>{e.seq}</td><td>{time(e.ts)}</td><td title={e.subject}>{short(e.subject)}</td><td title={e.beneficiary}>{short(e.beneficiary)}</td><td>{e.amount}</td><td>{e.creator}</td><td>{e.pool}</td><td>{e.fee}</td></tr>
            ))}
            {data.events.length === 0 && <tr><td colspan={8} class="muted">no events yet</td></tr>}
          </tbody>
        </table>

        <h2>Checkpoints and anchors</h2>
        <table id="checkpoints">
          <thead><tr><th>size</th><th>time (UTC)</th><th>root</th><th>anchors</th></tr></thead>
          <tbody>
            {data.checkpoints.map((c) => (
              <tr>
                <td>{c.size}</td><td>{time(c.ts)}</td><td title={c.root}>{short(c.root, 18)}</td>
                <td>{c.anchors.length === 0 ? <span class="muted">—</span> : c.anchors.map((a) => <span class={a.state} title={a.tx ?? ''}>{a.chain}: {a.state} </span>)}</td>
              </tr>
            ))}
          </tbody>
        </table>

        <h2>Sentry rejections (live)</h2>
        <table id="rejections">
          <thead><tr><th>time</th><th>route</th><th>code</th><th>client IP</th><th>claimed identity</th></tr></thead>
          <tbody>
            {data.rejections.map((r) => (
              <tr><td>{r.time.replace('T', ' ').slice(0, 19)}</td><td>{r.route}</td><td class="failed">{r.code}</td><td>{r.clientIp}</td><td title={r.claimed ?? ''}>{short(r.claimed ?? '—')}</td></tr>
            ))}
          </tbody>
        </table>
      </main>
      <script nonce={nonce} dangerouslySetInnerHTML={{ __html: FEED_SCRIPT }} />
    </body>
  </html>
);

// Prepends each rejection pushed over /events/rejections to the table.
const FEED_SCRIPT = `
const body = document.querySelector('#rejections tbody');
const total = document.getElementById('rejections-total');
const src = new EventSource('/events/rejections');
src.addEventListener('rejection', (ev) => {
  const r = JSON.parse(ev.data);
  const tr = document.createElement('tr');
  for (const [v, cls] of [[r.time.replace('T', ' ').slice(0, 19)], [r.route], [r.code, 'failed'], [r.clientIp], [r.claimed || '—']]) {
    const td = document.createElement('td');
    td.textContent = v;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  body.prepend(tr);
  total.textContent = String(Number(total.textContent) + 1);
});
`;
