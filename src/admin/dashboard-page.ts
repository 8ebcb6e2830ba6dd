/**
 * The live dashboard served at `GET /`: one self-contained HTML page (inline CSS and script,
 * no external resources, no build step), kept in TypeScript modules so it ships inside dist/.
 *
 * The Content-Security-Policy allows exactly the inline style and script below (by hash), and
 * network access only to this server (the event stream and the state API).
 */
import { createHash } from 'node:crypto';
import { DASHBOARD_SCRIPT } from './dashboard-script.js';
import { DASHBOARD_STYLE } from './dashboard-style.js';

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64');
}

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Usher dashboard</title>
<link rel="icon" href="data:,">
<style>${DASHBOARD_STYLE}</style>
</head>
<body>
<header>
  <div class="brand">Usher <small data-field="version"></small></div>
  <div class="status">
    <span class="conn" data-field="connection" data-state="connecting">connecting</span>
    <span>revision <b data-field="revision">–</b></span>
    <span>updated <b><time data-field="updated">never</time></b></span>
  </div>
</header>
<main>
  <div class="totals">
    <div class="total"><span>members</span><b data-field="total-members">–</b></div>
    <div class="total"><span>up</span><b data-field="total-up">–</b></div>
    <div class="total"><span>users</span><b data-field="total-users">–</b></div>
    <div class="total"><span>connections</span><b data-field="total-connections">–</b></div>
  </div>
  <h1 class="section">Pools</h1>
  <div id="pools" data-pools></div>
  <h1 class="section">Roles</h1>
  <div id="panels" class="panels" data-panels></div>
</main>
<footer>Read-only view. Drain, undrain and reload through the admin API with <code>Authorization: Bearer $USHER_ADMIN_TOKEN</code>.</footer>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;

/** Content-Security-Policy header for DASHBOARD_HTML. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(DASHBOARD_SCRIPT)}'`,
  `style-src 'sha256-${sha256(DASHBOARD_STYLE)}'`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
