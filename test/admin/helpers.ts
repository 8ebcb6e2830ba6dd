/**
 * Shared helpers for the admin tests: an admin server over a MemoryRegistry with recording
 * actions, a raw HTTP client, an SSE reader and polling with a deadline.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { TestContext } from 'node:test';
import { Metrics } from '../../src/admin/metrics.js';
import {
  type AdminActions,
  type AdminServer,
  type AdminServerOptions,
  createAdminServer,
  type ReloadResult,
} from '../../src/admin/server.js';
import { makeMember } from '../../src/core/model.js';
import { MemoryRegistry } from '../../src/registry/memory.js';

export const TOKEN = 'test-token-0123456789';

export interface Recorded {
  drain: string[];
  undrain: string[];
  reload: unknown[];
}

export interface Harness {
  server: AdminServer;
  registry: MemoryRegistry;
  metrics: Metrics;
  calls: Recorded;
  /** What the next reload returns. */
  reloadResult: ReloadResult;
}

/** Three members in `web` (one suspect), one in `chat`, and a declared but empty pool `empty`. */
export async function seed(registry: MemoryRegistry): Promise<void> {
  await registry.register(
    makeMember({
      id: 'web-1',
      pool: 'web',
      addresses: ['10.0.0.1'],
      ports: { main: 8080 },
      site: 'eu-west',
      weight: 2,
      labels: { zone: 'a' },
    }),
  );
  await registry.register(
    makeMember({ id: 'web-2', pool: 'web', addresses: ['10.0.0.2'], ports: { main: 8080 }, site: 'eu-west' }),
  );
  await registry.register(
    makeMember({
      id: 'web-3',
      pool: 'web',
      addresses: ['fd00::3'],
      ports: { main: 8080 },
      site: 'us-east',
      group: 1,
    }),
    { health: 'suspect' },
  );
  await registry.register(
    makeMember({ id: 'chat-1', pool: 'chat', addresses: ['10.0.1.1'], ports: { ws: 9000 }, site: 'eu-west' }),
  );
  await registry.report('web-1', {
    users: 12,
    connections: 20,
    inFlight: 1,
    cpu: 0.25,
    custom: {},
    timestamp: 1000,
  });
}

/** Starts an admin server on 127.0.0.1:0; everything is closed when the test ends, pass or fail. */
export async function startAdmin(
  t: TestContext,
  overrides: Partial<AdminServerOptions> = {},
  setup: (registry: MemoryRegistry) => Promise<void> = seed,
): Promise<Harness> {
  const registry = (overrides.registry as MemoryRegistry | undefined) ?? new MemoryRegistry();
  t.after(() => registry.close());
  await setup(registry);
  const metrics = overrides.metrics ?? new Metrics();
  const calls: Recorded = { drain: [], undrain: [], reload: [] };
  const harness = { registry, metrics, calls, reloadResult: { ok: true } } as Harness;
  const actions: AdminActions = {
    async drain(id) {
      calls.drain.push(id);
      await registry.setHealth(id, 'draining', 'admin drain');
    },
    async undrain(id) {
      calls.undrain.push(id);
      await registry.setHealth(id, 'up', 'admin undrain');
    },
    async reload(body) {
      calls.reload.push(body);
      return harness.reloadResult;
    },
  };
  harness.server = await createAdminServer({
    port: 0,
    token: TOKEN,
    pools: () => ['web', 'empty'],
    roles: () => ({}),
    actions,
    version: '9.9.9-test',
    ...overrides,
    registry,
    metrics,
  });
  t.after(() => harness.server.close());
  return harness;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent with Content-Length. */
  body?: string | Buffer;
  /** Sent chunked (no Content-Length), one write per chunk. */
  chunks?: Buffer[];
}

/**
 * One HTTP request on a fresh connection. Resolves with the whole response even when the
 * server answers before reading the request body (e.g. 413) and then closes the connection.
 */
export function http(base: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined) headers['Content-Length'] = Buffer.byteLength(options.body);
    const req = httpRequest(
      `${base}${path}`,
      { method: options.method ?? 'GET', headers, agent: false },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', (error) => {
      if (!responded) reject(error);
    });
    if (options.chunks) {
      for (const c of options.chunks) if (!req.destroyed) req.write(c);
      req.end();
    } else req.end(options.body);
  });
}

export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

export interface SseClient {
  status: number;
  headers: IncomingHttpHeaders;
  /** Next event (comments are skipped), or a rejection after `timeoutMs`. */
  next(timeoutMs?: number): Promise<SseEvent>;
  /** Comment lines seen so far (e.g. heartbeats). */
  comments: string[];
  close(): void;
}

/** Opens `GET path` as an event stream; resolves once the response headers arrive. */
export function sse(t: TestContext, base: string, path = '/api/v1/events'): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const queue: SseEvent[] = [];
    const waiters: ((e: SseEvent) => void)[] = [];
    const comments: string[] = [];
    let buffer = '';
    const req = httpRequest(
      `${base}${path}`,
      { agent: false, headers: { Accept: 'text/event-stream' } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf('\n\n');
            const event: SseEvent = { event: 'message', data: '' };
            let hasData = false;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) comments.push(line);
              else if (line.startsWith('event: ')) event.event = line.slice(7);
              else if (line.startsWith('id: ')) event.id = line.slice(4);
              else if (line.startsWith('data: ')) {
                event.data += (hasData ? '\n' : '') + line.slice(6);
                hasData = true;
              }
            }
            if (!hasData) continue;
            const waiter = waiters.shift();
            if (waiter) waiter(event);
            else queue.push(event);
          }
        });
        res.on('error', () => {});
        const client: SseClient = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          comments,
          next(timeoutMs = 5000) {
            const queued = queue.shift();
            if (queued) return Promise.resolve(queued);
            return new Promise((res2, rej2) => {
              const timer = setTimeout(() => {
                const i = waiters.indexOf(done);
                if (i >= 0) waiters.splice(i, 1);
                rej2(new Error(`no event within ${timeoutMs} ms`));
              }, timeoutMs);
              const done = (e: SseEvent): void => {
                clearTimeout(timer);
                res2(e);
              };
              waiters.push(done);
            });
          },
          close: () => req.destroy(),
        };
        t.after(() => client.close());
        resolve(client);
      },
    );
    req.on('error', (error) => {
      if (!req.destroyed || error.message !== 'socket hang up') reject(error);
    });
    req.end();
  });
}

export { eventually } from '../support/wait.js';

export const auth = { Authorization: `Bearer ${TOKEN}` };
