/**
 * The list service (seed 003, L3.3): any Usher server answers `GET /usher/list[/<pool>]` with
 * every server of the pool, as JSON, text, XML or JavaScript (docs/protocols/list.md).
 *
 * One document per pool is cached and rebuilt lazily (list-cache.ts): registry events mark the
 * pools they touch stale, and the next request rebuilds from one snapshot. Bodies are rendered
 * once per format and document. `handle` can be mounted in another node:http server; `listen`
 * runs its own.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sendJson } from '../admin/http.js';
import type { Metrics } from '../admin/metrics.js';
import type { Member } from '../core/model.js';
import { InvalidArgumentError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { LIST_PATH, type ListDocument } from './entry.js';
import { isValidCallback, LIST_CONTENT_TYPES, type ListFormat, negotiate, renderList } from './formats.js';
import { type CachedList, ListCache } from './list-cache.js';

export interface ListServiceOptions {
  readonly registry: Registry;
  /** Pools that may be listed; the first is served at `/usher/list`. Non-empty, unique names. */
  readonly pools: readonly string[];
  /** `Cache-Control: public, max-age=<n>`; default 1. Integer >= 0. */
  readonly cacheMaxAgeSec?: number;
  /** Url of a member for which `streamUrlOf` knows none (no `url` label, stream port or streamPath). */
  readonly urlOf?: (m: Member) => string | undefined;
  /** When given, requests are also counted in `usher_list_requests_total{format,status}`. */
  readonly metrics?: Metrics;
  /** Clock for `generatedAt`; `Date.now` by default. */
  readonly now?: () => number;
}

export interface ListListenOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
}

export interface ListListener {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

/** `format` is `none` for requests that never reached a format (404, 405, preflight, bad format). */
export type RequestCounts = Readonly<Record<string, Readonly<Record<string, number>>>>;

interface Rendered {
  readonly body: Buffer;
  readonly etag: string;
}

const ALLOW = 'GET, HEAD, OPTIONS';

const CORS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'ETag',
};

/** A strong ETag over the format and the body bytes. */
export function listEtag(format: string, body: Uint8Array): string {
  const hash = createHash('sha256').update(format).update('\0').update(body).digest('base64url');
  return `"${hash.slice(0, 27)}"`;
}

/** Whether an If-None-Match value matches `etag` (weak comparison, as RFC 9110 §13.1.2 asks). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

export class ListService {
  readonly #pools: readonly string[];
  readonly #cache: ListCache<Rendered>;
  readonly #maxAge: number;
  readonly #counts = new Map<string, Map<string, number>>();
  readonly #counter: ReturnType<Metrics['counter']> | undefined;
  readonly #servers = new Set<Server>();
  #closed = false;

  constructor(options: ListServiceOptions) {
    const { pools } = options;
    if (!Array.isArray(pools) || pools.length === 0)
      throw new InvalidArgumentError('list service: pools: expected at least one pool name');
    pools.forEach((p, i) => {
      if (typeof p !== 'string' || p === '')
        throw new InvalidArgumentError(`list service: pools[${i}]: expected a non-empty string`);
      if (pools.indexOf(p) !== i)
        throw new InvalidArgumentError(`list service: pools[${i}]: duplicate pool ${JSON.stringify(p)}`);
    });
    const maxAge = options.cacheMaxAgeSec ?? 1;
    if (!Number.isInteger(maxAge) || maxAge < 0)
      throw new InvalidArgumentError(
        `list service: cacheMaxAgeSec: expected an integer >= 0, got ${String(options.cacheMaxAgeSec)}`,
      );
    this.#pools = [...pools];
    this.#maxAge = maxAge;
    this.#counter = options.metrics?.counter(
      'list_requests_total',
      'List service requests by format and HTTP status',
      ['format', 'status'],
    );
    this.#cache = new ListCache({
      registry: options.registry,
      pools,
      urlOf: options.urlOf,
      now: options.now,
    });
  }

  /** The pools that may be listed; the first is the default. */
  get pools(): readonly string[] {
    return this.#pools;
  }

  /** How many times a document was built from a registry snapshot. */
  get builds(): number {
    return this.#cache.builds;
  }

  /** Requests answered so far, by format then by status, e.g. `{ json: { '200': 3, '304': 1 } }`. */
  requestCounts(): RequestCounts {
    const out: Record<string, Record<string, number>> = {};
    for (const [format, byStatus] of this.#counts) out[format] = Object.fromEntries(byStatus);
    return out;
  }

  /** The current document of a listed pool (rebuilt only if the registry changed it). */
  async document(pool: string = this.#pools[0]!): Promise<ListDocument> {
    return (await this.#cache.get(pool)).doc;
  }

  /**
   * Serves `/usher/list` and `/usher/list/<pool>` (any method: GET and HEAD answer, OPTIONS is a
   * CORS preflight, others 405). Returns false, touching nothing, for any other path.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== LIST_PATH && !path.startsWith(`${LIST_PATH}/`)) return false;
    this.#serve(req, res, path.slice(LIST_PATH.length), q < 0 ? '' : url.slice(q + 1)).catch(() => {
      if (!res.headersSent)
        this.#error(res, 'none', 500, 'USHER_ERR_INTERNAL', 'internal error in the list service');
      else res.destroy();
    });
    return true;
  }

  /** Starts a node:http server that serves the list (and 404 elsewhere). Closed by its close() or by close(). */
  async listen(options: ListListenOptions = {}): Promise<ListListener> {
    const server = createServer((req, res) => {
      if (this.handle(req, res)) return;
      sendJson(
        res,
        404,
        { error: { code: 'USHER_ERR_NOT_FOUND', message: `not found; the list is at ${LIST_PATH}` } },
        CORS,
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.add(server);
    const { address, port } = server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    return { host: address, port, url: `http://${host}:${port}`, close: () => this.#closeServer(server) };
  }

  /** Stops watching the registry and closes the servers started by listen(). Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#cache.close();
    }
    await Promise.all([...this.#servers].map((s) => this.#closeServer(s)));
  }

  #closeServer(server: Server): Promise<void> {
    if (!this.#servers.delete(server)) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  // ---- HTTP ----

  #count(format: string, status: number): void {
    let byStatus = this.#counts.get(format);
    if (!byStatus) {
      byStatus = new Map();
      this.#counts.set(format, byStatus);
    }
    byStatus.set(String(status), (byStatus.get(String(status)) ?? 0) + 1);
    this.#counter?.inc({ format, status: String(status) });
  }

  #error(
    res: ServerResponse,
    format: string,
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    this.#count(format, status);
    sendJson(res, status, { error: { code, message } }, { ...CORS, ...headers });
  }

  async #serve(req: IncomingMessage, res: ServerResponse, rest: string, query: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      this.#count('none', 204);
      res.writeHead(204, {
        ...CORS,
        'Access-Control-Allow-Methods': ALLOW,
        'Access-Control-Allow-Headers': 'Accept, If-None-Match, Cache-Control',
        'Access-Control-Max-Age': '86400',
        'Content-Length': '0',
      });
      res.end();
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      this.#error(
        res,
        'none',
        405,
        'USHER_ERR_METHOD_NOT_ALLOWED',
        `method ${method} not allowed on ${LIST_PATH}; allowed: ${ALLOW}`,
        { Allow: ALLOW },
      );
      return;
    }
    const pool = this.#poolOfPath(rest);
    if (pool === undefined || !this.#cache.has(pool)) {
      const asked = pool === undefined ? rest : pool;
      this.#error(
        res,
        'none',
        404,
        'USHER_ERR_NOT_FOUND',
        `pool not found: ${JSON.stringify(asked.slice(0, 80))}; known pools: ${this.#pools.join(', ')}`,
      );
      return;
    }
    if (this.#closed) {
      this.#error(res, 'none', 503, 'USHER_ERR_UNAVAILABLE', 'the list service is closed');
      return;
    }
    const params = new URLSearchParams(query);
    const callback = params.get('callback') ?? undefined;
    // A callback alone asks for JavaScript (what a <script src> tag, which sends Accept: */*, needs).
    const formatParam = params.get('format') ?? (callback !== undefined ? 'js' : null);
    const chosen = negotiate(req.headers.accept, formatParam);
    if (!chosen.ok) {
      const code = chosen.status === 400 ? 'USHER_ERR_BAD_REQUEST' : 'USHER_ERR_NOT_ACCEPTABLE';
      this.#error(res, 'none', chosen.status, code, chosen.message);
      return;
    }
    const { format } = chosen;
    const jsCallback = format === 'js' ? callback : undefined;
    if (jsCallback !== undefined && !isValidCallback(jsCallback)) {
      this.#error(
        res,
        format,
        400,
        'USHER_ERR_BAD_REQUEST',
        'callback: expected a dotted JavaScript identifier ([A-Za-z_$][\\w$]*, parts joined by dots) of at most 64 characters',
      );
      return;
    }
    let built: CachedList<Rendered>;
    try {
      built = await this.#cache.get(pool);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.#error(res, format, 503, 'USHER_ERR_REGISTRY', `registry unavailable: ${why}`);
      return;
    }
    const rendered = this.#render(built, format, jsCallback);
    const headers: Record<string, string | number> = {
      ...CORS,
      ETag: rendered.etag,
      'Cache-Control': `public, max-age=${this.#maxAge}`,
      Vary: 'Accept',
      'X-Content-Type-Options': 'nosniff',
    };
    if (ifNoneMatchHits(req.headers['if-none-match'], rendered.etag)) {
      this.#count(format, 304);
      res.writeHead(304, headers);
      res.end();
      return;
    }
    this.#count(format, 200);
    res.writeHead(200, {
      ...headers,
      'Content-Type': LIST_CONTENT_TYPES[format],
      'Content-Length': rendered.body.length,
    });
    if (method === 'HEAD') res.end();
    else res.end(rendered.body);
  }

  /** `''` or `/` is the default pool; `/<name>` (percent-decoded, one segment, optional trailing slash) a named one. */
  #poolOfPath(rest: string): string | undefined {
    if (rest === '' || rest === '/') return this.#pools[0];
    const segment = rest.slice(1).replace(/\/$/, '');
    if (segment === '' || segment.includes('/')) return undefined;
    try {
      return decodeURIComponent(segment);
    } catch {
      return undefined;
    }
  }

  #render(built: CachedList<Rendered>, format: ListFormat, callback: string | undefined): Rendered {
    // Callback variants are not cached: their names come from clients and are unbounded.
    if (callback !== undefined) {
      const body = Buffer.from(renderList(built.doc, format, callback));
      return { body, etag: listEtag(`${format}:${callback}`, body) };
    }
    let rendered = built.renderings.get(format);
    if (!rendered) {
      const body = Buffer.from(renderList(built.doc, format));
      rendered = { body, etag: listEtag(format, body) };
      built.renderings.set(format, rendered);
    }
    return rendered;
  }
}
