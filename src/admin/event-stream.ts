/**
 * Server-sent events for `GET /api/v1/events`: each client first gets a `state` event (the
 * whole admin view), then one event per registry change, named by its type (`member-added`,
 * `load`, `health`, ...) with the RegistryEvent as JSON and its revision as the event id. A
 * `roles` event follows whenever the per-role summaries change, and a comment line keeps idle
 * connections open through proxies.
 *
 * No change is lost or repeated between the state and the events: the client is subscribed
 * before the snapshot is taken, events are held until the state is written, and only events
 * newer than the snapshot's revision follow it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry, RegistryEvent } from '../registry/registry.js';
import type { AdminState } from './state.js';

export interface EventStreamOptions {
  /** Builds the current admin view (called once per client at connect). */
  readonly state: () => Promise<AdminState>;
  /** Current per-role summaries, polled every `rolesIntervalMs` while clients are connected. */
  readonly roles: () => Readonly<Record<string, unknown>>;
  /** Most concurrent clients; further ones are refused. */
  readonly maxClients: number;
  /** Interval of the `: heartbeat` comment. */
  readonly heartbeatMs: number;
  /** Interval at which `roles()` is polled for changes. */
  readonly rolesIntervalMs: number;
  /** A client whose unsent output grows past this many bytes is disconnected (it is not reading). */
  readonly maxBufferedBytes: number;
  /** Called when the number of connected clients changes. */
  readonly onClients?: (count: number) => void;
  /** Called with failures that do not concern one request (state build, roles()). */
  readonly onError?: (error: unknown, what: string) => void;
}

interface Client {
  readonly res: ServerResponse;
  /** Events received before the initial state was written; null once it has been. */
  held: RegistryEvent[] | null;
}

export class EventStream {
  #clients = new Set<Client>();
  #options: EventStreamOptions;
  #unwatch: () => void;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #rolesTimer: ReturnType<typeof setInterval> | undefined;
  /** Roles JSON last broadcast; a client connecting in between may get a `roles` event equal to its state's. */
  #lastRoles = '';
  #closed = false;

  constructor(registry: Registry, options: EventStreamOptions) {
    this.#options = options;
    this.#unwatch = registry.watch((event) => this.#broadcast(event));
  }

  get size(): number {
    return this.#clients.size;
  }

  get full(): boolean {
    return this.#clients.size >= this.#options.maxClients;
  }

  /** Takes over the response for an event stream. The caller checks `full` first. */
  async open(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client: Client = { res, held: [] };
    this.#clients.add(client);
    this.#changed();
    const drop = (): void => this.#drop(client);
    req.once('close', drop);
    res.once('close', drop);
    res.once('error', drop);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    this.#write(client, 'retry: 2000\n\n');
    let state: AdminState;
    try {
      state = await this.#options.state();
    } catch (error) {
      this.#options.onError?.(error, 'building the state for an event-stream client');
      this.#drop(client);
      res.end();
      return;
    }
    if (!this.#clients.has(client)) return;
    this.#write(client, frame('state', state.revision, state));
    const held = client.held ?? [];
    client.held = null;
    for (const event of held) if (event.revision > state.revision) this.#send(client, event);
  }

  /** Ends every stream and stops watching the registry. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    for (const client of [...this.#clients]) {
      this.#drop(client);
      client.res.end();
    }
    this.#stopTimers();
  }

  #broadcast(event: RegistryEvent): void {
    let text: string | undefined;
    for (const client of this.#clients) {
      if (client.held) {
        client.held.push(event);
        continue;
      }
      text ??= frame(event.type, event.revision, event);
      this.#write(client, text);
    }
  }

  #send(client: Client, event: RegistryEvent): void {
    this.#write(client, frame(event.type, event.revision, event));
  }

  #write(client: Client, text: string): void {
    const { res } = client;
    if (res.destroyed || res.writableEnded) {
      this.#drop(client);
      return;
    }
    res.write(text);
    if (res.writableLength > this.#options.maxBufferedBytes) {
      this.#drop(client);
      res.destroy();
    }
  }

  #drop(client: Client): void {
    if (!this.#clients.delete(client)) return;
    this.#changed();
  }

  #changed(): void {
    this.#options.onClients?.(this.#clients.size);
    if (this.#clients.size > 0 && !this.#closed) this.#startTimers();
    else this.#stopTimers();
  }

  #startTimers(): void {
    if (!this.#heartbeat) {
      this.#heartbeat = setInterval(() => {
        for (const client of [...this.#clients]) if (!client.held) this.#write(client, ': heartbeat\n\n');
      }, this.#options.heartbeatMs);
      this.#heartbeat.unref();
    }
    if (!this.#rolesTimer) {
      this.#rolesTimer = setInterval(() => this.#pollRoles(), this.#options.rolesIntervalMs);
      this.#rolesTimer.unref();
    }
  }

  #stopTimers(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#rolesTimer) clearInterval(this.#rolesTimer);
    this.#heartbeat = undefined;
    this.#rolesTimer = undefined;
  }

  #pollRoles(): void {
    let text: string;
    try {
      text = JSON.stringify(this.#options.roles()) ?? '{}';
    } catch (error) {
      this.#options.onError?.(error, 'reading role summaries');
      return;
    }
    if (text === this.#lastRoles) return;
    this.#lastRoles = text;
    const message = `event: roles\ndata: ${text}\n\n`;
    for (const client of [...this.#clients]) if (!client.held) this.#write(client, message);
  }
}

/** One SSE message. JSON.stringify never emits raw newlines, so `data` is a single line. */
function frame(type: string, revision: number, data: unknown): string {
  return `event: ${type}\nid: ${revision}\ndata: ${JSON.stringify(data)}\n\n`;
}
