/**
 * The admin HTTP server: health check, Prometheus metrics, the admin API and the live
 * dashboard, on node:http with no framework.
 *
 *   GET  /                              live dashboard (HTML, self-contained)
 *   GET  /healthz                       200 `ok`
 *   GET  /metrics                       Prometheus text format
 *   GET  /api/v1/state                  pools, members, summaries, role summaries (JSON)
 *   GET  /api/v1/events                 server-sent events: `state`, then registry changes
 *   POST /api/v1/members/:id/drain      token required
 *   POST /api/v1/members/:id/undrain    token required
 *   POST /api/v1/reload                 token required; optional JSON body for actions.reload
 *
 * Reads are open (the server listens on loopback by default); mutations need
 * `Authorization: Bearer <token>` where the token is the USHER_ADMIN_TOKEN environment
 * variable, which the caller reads and passes as `token`. Without a token, mutations are
 * refused with 403. Errors are `{ error: { code, message } }` with the codes of src/errors.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HEALTH_STATES } from '../core/model.js';
import {
  BadRequestError,
  ConfigInvalidError,
  type Issue,
  MethodNotAllowedError,
  NotFoundError,
  UnavailableError,
} from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { ADMIN_TOKEN_ENV, bearerCheck } from './auth.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard-page.js';
import { EventStream } from './event-stream.js';
import { parseJsonObject, readBody, sendError, sendJson, sendText } from './http.js';
import type { Metrics } from './metrics.js';
import { type AdminState, buildState, groupByPool, summarise } from './state.js';

export type ReloadResult = { ok: true; revision?: number } | { ok: false; issues: Issue[] };

/** What the admin API can change; supplied by whoever runs the roles (the `usher run` command). */
export interface AdminActions {
  /** Puts a member into `draining`. Called only for ids the registry knows. */
  drain(id: string): Promise<void>;
  /** Takes a member out of `draining`. Called only for ids the registry knows. */
  undrain(id: string): Promise<void>;
  /**
   * Re-reads (or, with a body, applies) the configuration. A refused change returns the
   * issues and leaves the running configuration as it was.
   */
  reload(body?: unknown): Promise<ReloadResult>;
}

type LogFn = (obj: object, msg?: string) => void;

/** The subset of a pino logger the admin server uses. */
export interface AdminLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

export interface AdminServerOptions {
  /** Address to listen on. Default `127.0.0.1` (loopback only). */
  readonly host?: string;
  /** Port; 0 (the default) picks a free one, see `AdminServer.port`. */
  readonly port?: number;
  /**
   * Bearer token required by mutations. Pass `process.env.USHER_ADMIN_TOKEN`; when undefined
   * or empty, mutations are refused with 403.
   */
  readonly token?: string | undefined;
  readonly registry: Registry;
  readonly metrics: Metrics;
  /** Declared pool names, so pools without members are shown too. */
  readonly pools?: () => readonly string[];
  /** Per-role summaries (assigner, gateway, ...), JSON-serialisable, shown as dashboard panels. */
  readonly roles?: () => Readonly<Record<string, unknown>>;
  readonly actions: AdminActions;
  /** Usher version shown by the API and dashboard. */
  readonly version: string;
  readonly logger?: AdminLogger;
  /** Largest accepted request body. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Most concurrent event-stream clients. Default 64. */
  readonly maxEventClients?: number;
  /** Event-stream heartbeat interval. Default 15 000 ms. */
  readonly heartbeatMs?: number;
  /** How often role summaries are checked for changes to push to event-stream clients. Default 2 000 ms. */
  readonly rolesIntervalMs?: number;
}

export interface AdminServer {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Ends event streams, closes every connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

interface Context {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: readonly string[];
}

interface Route {
  /** Label for metrics and logs, e.g. `/api/v1/members/:id/drain`. */
  readonly label: string;
  /** Path segments; `:param` matches one non-empty segment. */
  readonly segments: readonly string[];
  readonly methods: Readonly<Record<string, (ctx: Context) => Promise<void> | void>>;
}

const MiB = 1024 * 1024;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const noop: LogFn = () => {};
const silent: AdminLogger = { debug: noop, info: noop, warn: noop, error: noop };

export async function createAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { registry, metrics, actions, version } = options;
  const host = options.host ?? '127.0.0.1';
  const log = options.logger ?? silent;
  const declaredPools = options.pools ?? (() => []);
  const roles = options.roles ?? (() => ({}));
  const maxBody = options.maxBodyBytes ?? MiB;
  const checkToken = bearerCheck(options.token);

  const requests = metrics.counter(
    'admin_requests_total',
    'Admin HTTP requests by route, method and status',
    ['route', 'method', 'status'],
  );
  const poolMembers = metrics.gauge('pool_members', 'Members per pool and health state', ['pool', 'health']);
  const poolUsers = metrics.gauge('pool_users', 'Users reported by the members of each pool', ['pool']);
  const poolConnections = metrics.gauge(
    'pool_connections',
    'Connections reported by the members of each pool',
    ['pool'],
  );
  const revisionGauge = metrics.gauge('registry_revision', 'Current revision of the registry');
  const eventClients = metrics.gauge('admin_event_clients', 'Connected admin event-stream (SSE) clients');

  async function state(): Promise<AdminState> {
    const snapshot = await registry.snapshot();
    return buildState(snapshot, declaredPools(), roles(), version, Date.now());
  }

  /** Sets the pool gauges from a fresh snapshot (synchronously after it, so a scrape never sees half). */
  async function refreshPoolGauges(): Promise<void> {
    const snapshot = await registry.snapshot();
    const pools = groupByPool(snapshot.members, declaredPools());
    poolMembers.reset();
    poolUsers.reset();
    poolConnections.reset();
    for (const [pool, members] of pools) {
      const summary = summarise(members);
      for (const health of HEALTH_STATES) poolMembers.set({ pool, health }, summary[health]);
      poolUsers.set({ pool }, summary.users);
      poolConnections.set({ pool }, summary.connections);
    }
    revisionGauge.set(snapshot.revision);
  }

  const events = new EventStream(registry, {
    state,
    roles,
    maxClients: options.maxEventClients ?? 64,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    rolesIntervalMs: options.rolesIntervalMs ?? 2_000,
    maxBufferedBytes: MiB,
    onClients: (n) => eventClients.set(n),
    onError: (error, what) => log.error({ err: error }, `admin: failed ${what}`),
  });

  async function memberAction(ctx: Context, name: 'drain' | 'undrain'): Promise<void> {
    checkToken(ctx.req.headers.authorization);
    parseJsonObject(await readBody(ctx.req, maxBody), []);
    const id = ctx.params[0]!;
    if (!(await registry.get(id))) throw new NotFoundError('member', id);
    await actions[name](id);
    const view = await registry.get(id);
    log.info({ id, action: name, health: view?.health }, `admin: ${name} ${id}`);
    sendJson(ctx.res, 200, { ok: true, id, health: view?.health ?? null });
  }

  const routes: Route[] = [
    {
      label: '/',
      segments: [],
      methods: {
        GET: ({ res }) =>
          sendText(res, 200, DASHBOARD_HTML, 'text/html; charset=utf-8', {
            'Content-Security-Policy': DASHBOARD_CSP,
            'Referrer-Policy': 'no-referrer',
            'X-Frame-Options': 'DENY',
          }),
      },
    },
    {
      label: '/healthz',
      segments: ['healthz'],
      methods: { GET: ({ res }) => sendText(res, 200, 'ok', 'text/plain; charset=utf-8') },
    },
    {
      label: '/metrics',
      segments: ['metrics'],
      methods: {
        GET: async ({ res }) => {
          await refreshPoolGauges();
          sendText(res, 200, await metrics.text(), metrics.contentType);
        },
      },
    },
    {
      label: '/api/v1/state',
      segments: ['api', 'v1', 'state'],
      methods: { GET: async ({ res }) => sendJson(res, 200, await state()) },
    },
    {
      label: '/api/v1/events',
      segments: ['api', 'v1', 'events'],
      methods: {
        GET: async ({ req, res }) => {
          if (events.full)
            throw new UnavailableError(
              `too many event-stream clients (limit ${options.maxEventClients ?? 64}); retry later`,
            );
          await events.open(req, res);
        },
      },
    },
    {
      label: '/api/v1/members/:id/drain',
      segments: ['api', 'v1', 'members', ':id', 'drain'],
      methods: { POST: (ctx) => memberAction(ctx, 'drain') },
    },
    {
      label: '/api/v1/members/:id/undrain',
      segments: ['api', 'v1', 'members', ':id', 'undrain'],
      methods: { POST: (ctx) => memberAction(ctx, 'undrain') },
    },
    {
      label: '/api/v1/reload',
      segments: ['api', 'v1', 'reload'],
      methods: {
        POST: async ({ req, res }) => {
          checkToken(req.headers.authorization);
          const body = parseJsonObject(await readBody(req, maxBody));
          const result = await actions.reload(body);
          if (!result.ok) {
            log.warn({ issues: result.issues }, 'admin: reload refused');
            throw new ConfigInvalidError(result.issues, 'reload');
          }
          log.info({ revision: result.revision }, 'admin: reloaded');
          sendJson(
            res,
            200,
            result.revision === undefined ? { ok: true } : { ok: true, revision: result.revision },
          );
        },
      },
    },
  ];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let routeLabel = 'unmatched';
    const method = KNOWN_METHODS.has(req.method ?? '') ? req.method! : 'other';
    res.once('close', () => {
      requests.inc({ route: routeLabel, method, status: String(res.statusCode) });
    });
    try {
      const path = requestPath(req.url);
      const match = matchRoute(routes, path);
      if (!match) throw new NotFoundError('route', path);
      routeLabel = match.route.label;
      const allowed = Object.keys(match.route.methods);
      const lookup = req.method === 'HEAD' && match.route.label !== '/api/v1/events' ? 'GET' : req.method;
      const handler = lookup ? match.route.methods[lookup] : undefined;
      if (!handler) {
        const allow =
          allowed.includes('GET') && match.route.label !== '/api/v1/events' ? [...allowed, 'HEAD'] : allowed;
        throw new MethodNotAllowedError(req.method ?? '?', path, allow);
      }
      await handler({ req, res, params: match.params });
    } catch (error) {
      const context = `${req.method} ${routeLabel}`;
      if (
        error instanceof Error &&
        'code' in error &&
        typeof error.code === 'string' &&
        error.code.startsWith('USHER_')
      )
        log.debug({ err: error, url: req.url }, `admin: ${context}: ${error.message}`);
      else log.error({ err: error, url: req.url }, `admin: ${context} failed`);
      sendError(res, error, context);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      log.error({ err: error }, 'admin: request handler failed');
      if (!res.headersSent) res.destroy();
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error) => {
    events.close();
    throw error;
  });
  server.on('error', (error) => log.error({ err: error }, 'admin: server error'));

  const address = server.address() as AddressInfo;
  const url = `http://${urlHost(address.address)}:${address.port}`;
  if (!isLoopback(address.address) && !options.token)
    log.warn(
      { host },
      `admin: listening beyond loopback; reads are open and mutations disabled (no ${ADMIN_TOKEN_ENV})`,
    );
  else if (!isLoopback(address.address))
    log.warn({ host }, 'admin: listening beyond loopback; reads (state, events, metrics) need no token');
  log.info({ url }, 'admin: listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        events.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The path of a request target (origin-form or absolute-form), without query or fragment. */
function requestPath(target: string | undefined): string {
  const raw = target ?? '/';
  if (raw.startsWith('/')) {
    const end = raw.search(/[?#]/);
    return end === -1 ? raw : raw.slice(0, end);
  }
  try {
    return new URL(raw).pathname;
  } catch {
    throw new BadRequestError(`malformed request target: ${JSON.stringify(raw.slice(0, 200))}`);
  }
}

function matchRoute(routes: readonly Route[], path: string): { route: Route; params: string[] } | undefined {
  const parts = path === '/' ? [] : path.slice(1).split('/');
  for (const route of routes) {
    if (route.segments.length !== parts.length) continue;
    const params: string[] = [];
    let ok = true;
    for (let i = 0; i < parts.length; i++) {
      const want = route.segments[i]!;
      const got = parts[i]!;
      if (want.startsWith(':')) {
        if (got === '') {
          ok = false;
          break;
        }
        try {
          params.push(decodeURIComponent(got));
        } catch {
          throw new BadRequestError(
            `malformed percent-encoding in path segment ${JSON.stringify(got.slice(0, 200))}`,
          );
        }
      } else if (want !== got) {
        ok = false;
        break;
      }
    }
    if (ok) return { route, params };
  }
  return undefined;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1';
}

function urlHost(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '[::1]';
  return address.includes(':') ? `[${address}]` : address;
}
