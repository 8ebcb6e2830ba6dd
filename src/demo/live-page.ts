/**
 * The live-data demo page (seed 003), served by the list server at `GET /demo/live`: it loads
 * the browser SDK (`/usher/client.js`, an ES module), fetches the server list from every list
 * URL it knows (`?lists=url,url`, else this origin), chooses a server with the core policy,
 * keeps a WebSocket stream of price ticks, and moves to another server when that one fails.
 * Not for production; a real page does the same in a few lines.
 *
 * `window.usherDemo` exposes what the page saw (server, ticks, transitions) for the browser test.
 */

export const LIVE_SCRIPT = `
import { connectStream } from '/usher/client.js';

const params = new URLSearchParams(location.search);
const pool = params.get('pool') || 'live';
const lists = (params.get('lists') || new URL('/usher/list/' + encodeURIComponent(pool), location.href).href)
  .split(',').map((s) => s.trim()).filter(Boolean);
const symbols = (params.get('symbols') || 'USHR,ACME,GLOBX').split(',');

const state = { server: null, state: 'idle', ticks: 0, ticksByServer: {}, servers: [], events: [], last: {} };
window.usherDemo = state;
const $ = (sel) => document.querySelector(sel);

function log(kind, text) {
  state.events.push({ at: Date.now(), kind, text });
  const li = document.createElement('li');
  li.dataset.kind = kind;
  li.textContent = new Date().toLocaleTimeString() + '  ' + kind + (text ? ': ' + text : '');
  $('#log').prepend(li);
  while ($('#log').children.length > 40) $('#log').lastChild.remove();
}

function renderQuote(topic, data) {
  let row = document.querySelector('[data-symbol="' + CSS.escape(topic) + '"]');
  if (!row) {
    row = document.createElement('tr');
    row.dataset.symbol = topic;
    row.innerHTML = '<th></th><td data-field="price"></td><td data-field="change"></td><td data-field="from"></td>';
    row.querySelector('th').textContent = topic;
    $('#quotes').append(row);
  }
  const price = typeof data === 'object' && data !== null ? data.price : data;
  const prev = state.last[topic];
  state.last[topic] = price;
  row.querySelector('[data-field=price]').textContent = typeof price === 'number' ? price.toFixed(2) : String(price);
  const up = typeof prev === 'number' && price >= prev;
  row.querySelector('[data-field=change]').textContent = typeof prev === 'number' ? (up ? '▲' : '▼') : '';
  row.querySelector('[data-field=change]').className = up ? 'up' : 'down';
  row.querySelector('[data-field=from]').textContent = state.server || '';
}

const client = connectStream({ listUrls: lists });
client.on('state', (s) => {
  state.state = s;
  $('[data-field=state]').textContent = s;
  $('[data-field=state]').dataset.state = s;
});
client.on('list', (doc) => {
  state.servers = doc.servers.map((s) => s.id + ':' + s.status);
  $('[data-field=servers]').textContent = doc.servers.map((s) => s.id + ' ' + s.status + ' ' + s.users + '/' + s.capacity).join(' · ');
});
client.on('open', (server) => {
  state.server = server.id;
  $('[data-field=server]').textContent = state.server || '?';
  log('open', state.server);
});
client.on('lost', (e) => log('lost', e.server.id + ' ' + e.reason));
client.on('retry-same', (server) => log('retry-same', server.id));
client.on('refetch', (r) => log('refetch', r.excluded.length ? 'excluding ' + r.excluded.join(', ') : ''));
client.on('reconnected', (e) => log('reconnected', e.previous.id + ' → ' + e.server.id + ' after ' + e.downtimeMs + ' ms'));
client.on('gap', (g) => log('gap', g.topic + ' ' + g.fromSeq + '..' + g.toSeq));
client.on('error', (e) => log('error', String(e && e.message ? e.message : e)));
for (const symbol of symbols) {
  client.subscribe('ticker.' + symbol, (data) => {
    state.ticks += 1;
    const s = state.server || '?';
    state.ticksByServer[s] = (state.ticksByServer[s] || 0) + 1;
    $('[data-field=ticks]').textContent = String(state.ticks);
    renderQuote(symbol, data);
  });
}
`;

export const LIVE_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #0f1419; color: #e6e6e6; }
header { padding: 12px 20px; background: #1b2530; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header b { color: #fff; }
main { padding: 20px; display: grid; grid-template-columns: minmax(260px, 1fr) minmax(260px, 1fr); gap: 24px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #2a3642; font-variant-numeric: tabular-nums; }
.up { color: #3fb950; } .down { color: #f85149; }
[data-state=open] { color: #3fb950; } [data-state=retrying], [data-state=fetching], [data-state=connecting] { color: #d29922; }
ul { list-style: none; padding: 0; margin: 0; font-family: ui-monospace, monospace; font-size: 12px; }
li[data-kind=lost] { color: #f85149; } li[data-kind=reconnected], li[data-kind=open] { color: #3fb950; }
small { color: #8b949e; }
`;

export const LIVE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Usher live data demo</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/demo/live.css">
</head>
<body>
<header>
  <span>Usher live data</span>
  <span>server <b data-field="server">–</b></span>
  <span>stream <b data-field="state" data-state="idle">idle</b></span>
  <span>ticks <b data-field="ticks">0</b></span>
  <small data-field="servers"></small>
</header>
<main>
  <section><h2>Quotes</h2><table><tbody id="quotes"></tbody></table></section>
  <section><h2>Transitions</h2><ul id="log"></ul></section>
</main>
<script type="module" src="/demo/live.js"></script>
</body>
</html>
`;

/** Content-Security-Policy of the page: its own script and style, lists and streams anywhere. */
export const LIVE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  'connect-src http: https: ws: wss:',
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
