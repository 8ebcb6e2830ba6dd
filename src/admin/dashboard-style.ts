/** CSS of the live dashboard (inlined into the page; see dashboard-page.ts). */
export const DASHBOARD_STYLE = `
:root {
  color-scheme: dark;
  --bg: #0e1116; --panel: #161b22; --panel-2: #1c232d; --border: #2a3441;
  --text: #e6edf3; --muted: #8d99a8; --accent: #79c0ff;
  --up: #3fb950; --suspect: #d29922; --down: #f85149; --draining: #6e9eff;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; line-height: 1.4;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
header {
  position: sticky; top: 0; z-index: 1; display: flex; align-items: center; gap: 16px;
  padding: 12px 24px; background: rgba(14, 17, 22, 0.92); border-bottom: 1px solid var(--border);
  backdrop-filter: blur(6px);
}
.brand { font-weight: 700; font-size: 18px; letter-spacing: 0.02em; }
.brand small { font-weight: 400; color: var(--muted); font-size: 12px; margin-left: 6px; }
.status { margin-left: auto; display: flex; align-items: center; gap: 16px; color: var(--muted); font-size: 13px; }
.status b { color: var(--text); font-weight: 600; font-variant-numeric: tabular-nums; }
.conn { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px;
  border: 1px solid var(--border); color: var(--text); }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.conn[data-state="live"]::before { background: var(--up); box-shadow: 0 0 6px var(--up); }
.conn[data-state="reconnecting"]::before, .conn[data-state="connecting"]::before { background: var(--suspect); }
main { padding: 20px 24px 40px; display: grid; gap: 24px; max-width: 1600px; margin: 0 auto; }
.totals { display: flex; flex-wrap: wrap; gap: 12px; }
.total { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 10px 16px; min-width: 120px; }
.total span { display: block; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.06em; }
.total b { font-size: 22px; font-variant-numeric: tabular-nums; }
#pools { display: grid; gap: 16px; }
.pool { background: var(--panel); border: 1px solid var(--border); border-radius: 12px; padding: 16px; }
.pool-head { display: flex; align-items: baseline; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
.pool-head h2 { margin: 0; font-size: 16px; }
.summary { display: flex; flex-wrap: wrap; gap: 8px; color: var(--muted); font-size: 12px; }
.pill { padding: 1px 8px; border-radius: 999px; border: 1px solid var(--border); font-variant-numeric: tabular-nums; }
.pill[data-zero="true"] { opacity: 0.45; }
.pill[data-health="up"] { color: var(--up); } .pill[data-health="suspect"] { color: var(--suspect); }
.pill[data-health="down"] { color: var(--down); } .pill[data-health="draining"] { color: var(--draining); }
.members { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }
.empty { color: var(--muted); margin: 4px 0 0; font-style: italic; }
.member { background: var(--panel-2); border: 1px solid var(--border); border-left: 4px solid var(--muted);
  border-radius: 10px; padding: 12px 14px; display: grid; gap: 6px; transition: border-color 0.3s; }
.member[data-health="up"] { border-left-color: var(--up); }
.member[data-health="suspect"] { border-left-color: var(--suspect); }
.member[data-health="down"] { border-left-color: var(--down); opacity: 0.85; }
.member[data-health="draining"] { border-left-color: var(--draining); }
.m-head { display: flex; align-items: center; justify-content: space-between; gap: 8px; }
.m-id { font-weight: 600; overflow-wrap: anywhere; }
.badge { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.06em;
  padding: 2px 8px; border-radius: 999px; color: #0e1116; background: var(--muted); }
.badge[data-state="up"] { background: var(--up); } .badge[data-state="suspect"] { background: var(--suspect); }
.badge[data-state="down"] { background: var(--down); } .badge[data-state="draining"] { background: var(--draining); }
.m-addr { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; color: var(--accent);
  overflow-wrap: anywhere; }
.m-meta { color: var(--muted); font-size: 12px; }
.m-meta b { color: var(--text); font-weight: 500; }
.stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; margin-top: 2px; }
.stat span { display: block; color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.06em; }
.stat b { font-size: 18px; font-variant-numeric: tabular-nums; }
.bar { height: 4px; background: var(--border); border-radius: 2px; overflow: hidden; margin-top: 3px; }
.bar i { display: block; height: 100%; width: 0; background: var(--accent); transition: width 0.3s; }
.bar i[data-hot="true"] { background: var(--down); }
.spark { width: 100%; height: 30px; display: block; color: var(--accent); }
.spark polyline { fill: none; stroke: currentColor; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.spark polygon { fill: currentColor; opacity: 0.12; stroke: none; }
.valuebar { width: 100%; height: 24px; display: block; margin: 6px 0; border-radius: 3px; background: var(--border); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; vertical-align: middle; }
.timeline { display: flex; gap: 1px; height: 6px; margin-top: 4px; }
.timeline i { flex: 1 1 0; max-width: 8px; background: var(--border); border-radius: 1px; }
.timeline i[data-state="up"] { background: var(--up); } .timeline i[data-state="suspect"] { background: var(--suspect); }
.timeline i[data-state="down"] { background: var(--down); } .timeline i[data-state="draining"] { background: var(--draining); }
.spark line { stroke: var(--border); stroke-width: 1; stroke-dasharray: 2 3; vector-effect: non-scaling-stroke; }
.labels { display: flex; flex-wrap: wrap; gap: 4px; }
.label { font-size: 11px; color: var(--muted); border: 1px solid var(--border); border-radius: 4px; padding: 0 5px;
  overflow-wrap: anywhere; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
.panels:empty::before { content: "Role panels (assigner, list, gateway, ...) appear here when those roles run.";
  color: var(--muted); font-style: italic; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 12px; padding: 14px 16px; }
.panel h2 { margin: 0 0 8px; font-size: 15px; }
.kv { width: 100%; border-collapse: collapse; font-size: 13px; }
.kv th { text-align: left; color: var(--muted); font-weight: 500; padding: 3px 12px 3px 0; vertical-align: top;
  white-space: nowrap; }
.kv td { padding: 3px 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.kv tr + tr th, .kv tr + tr td { border-top: 1px solid var(--border); }
h1.section { font-size: 13px; text-transform: uppercase; letter-spacing: 0.08em; color: var(--muted); margin: 0 0 -12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 0 24px 24px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
`;
