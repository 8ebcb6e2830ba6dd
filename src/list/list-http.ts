/**
 * The list role's HTTP server (`list:` in the config): the list service (L3.3) at
 * `/usher/list[/<pool>]`, the browser SDK at `/usher/client.js`, and — with the demo on — the
 * live-data page at `/demo/live`. One listener per process; members and balancers alike run it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LIVE_CSP, LIVE_HTML, LIVE_SCRIPT, LIVE_STYLE } from '../demo/live-page.js';
import type { Logger } from '../util/logger.js';
import { clientBundle } from './client-bundle.js';
import type { ListService } from './list-service.js';

export interface ListHttpOptions {
  readonly service: ListService;
  readonly host: string;
  readonly port: number;
  /** Serve the live-data demo page. */
  readonly demo?: boolean;
  readonly logger?: Logger;
}

export interface ListHttpServer {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` (IPv6 in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string, extra = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

export async function startListHttp(options: ListHttpOptions): Promise<ListHttpServer> {
  const statics = new Map<string, () => Promise<[string, string, Record<string, string>]>>([
    [
      '/usher/client.js',
      async () => [
        'text/javascript; charset=utf-8',
        await clientBundle(),
        { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' },
      ],
    ],
  ]);
  if (options.demo) {
    statics.set('/demo/live', async () => [
      'text/html; charset=utf-8',
      LIVE_HTML,
      { 'content-security-policy': LIVE_CSP, 'cache-control': 'no-cache' },
    ]);
    statics.set('/demo/live.js', async () => ['text/javascript; charset=utf-8', LIVE_SCRIPT, {}]);
    statics.set('/demo/live.css', async () => ['text/css; charset=utf-8', LIVE_STYLE, {}]);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (options.service.handle(req, res)) return;
    const path = (req.url ?? '/').split('?')[0]!;
    const page = statics.get(path);
    if (!page) {
      send(res, 404, 'application/json', `${JSON.stringify({ error: `no such path: ${path}` })}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'application/json', `${JSON.stringify({ error: 'use GET' })}\n`, { allow: 'GET, HEAD' });
      return;
    }
    page().then(
      ([type, body, extra]) => {
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
          res.end();
        } else send(res, 200, type, body, extra);
      },
      (error: unknown) => {
        options.logger?.error({ err: error, path }, 'list server: cannot serve');
        send(res, 503, 'application/json', `${JSON.stringify({ error: (error as Error).message })}\n`);
      },
    );
  };

  const server: Server = createServer(handler);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.address;
  return {
    host,
    port: address.port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
