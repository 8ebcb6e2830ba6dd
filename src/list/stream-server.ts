/**
 * The server end of the stream protocol (seed 003, L3.5; docs/protocols/stream.md): topics with a
 * per-topic sequence and a bounded history, delivered over WebSocket (`ws`) to the clients that
 * chose this server from the list. Attach it to an existing node:http server's `upgrade` event on
 * a path (`attach`), or let it listen on its own (`StreamServer.listen`).
 *
 *   const stream = await StreamServer.listen({ serverId: 'live-1', host: '127.0.0.1', port: 9301 });
 *   stream.publish('ticker.USHR', { price: 101.5 });
 *
 * Bad frames from the network are counted by reason, answered with an `error` frame and
 * dropped; they never throw. Every `heartbeatMs` each client gets a `heartbeat` frame and a
 * WebSocket ping; a client that has shown no sign of life (a frame or a pong) for three periods
 * is terminated, and one that does not read what is sent to it (more than `maxBufferedBytes`
 * queued) is dropped.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { InvalidArgumentError } from '../errors.js';
import {
  DEFAULT_STREAM_PATH,
  encodeFrame,
  isSeq,
  isTopic,
  parseClientFrame,
  type ServerFrame,
  STREAM_PROTOCOL_VERSION,
  type StreamErrorCode,
} from './stream-protocol.js';
import { TopicTable } from './stream-topics.js';

export interface StreamServerOptions {
  /** This server's id, as in the list document; sent in `welcome`. */
  readonly serverId: string;
  /** Heartbeat period in ms (default 1000). */
  readonly heartbeatMs?: number;
  /** Messages kept per topic for `since` replay (default 256). */
  readonly historySize?: number;
  /** Topics one connection may subscribe to (default 64). */
  readonly maxSubscriptions?: number;
  /** Largest client frame, in bytes (default 4096); larger ones are refused with `too-large`. */
  readonly maxMessageBytes?: number;
  /** Most concurrent connections (default unlimited); further upgrades get HTTP 503. */
  readonly maxConnections?: number;
  /** A client with more than this many bytes queued is dropped as too slow (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Which topics clients may subscribe to (default: any); others are refused with `forbidden-topic`. */
  readonly allowTopic?: (topic: string) => boolean;
  /** The upgrade path for `attach` and `listen` (default `/usher/stream`). */
  readonly path?: string;
}

export interface StreamListenOptions extends StreamServerOptions {
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default 0: any free port). */
  readonly port?: number;
}

export interface PublishOptions {
  /** An explicit seq, greater than the topic's latest (default: latest + 1). */
  readonly seq?: number;
}

export interface StreamServerStats {
  readonly connections: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly published: number;
  /** Client frames refused, by reason. */
  readonly dropped: Readonly<Record<StreamErrorCode, number>>;
  /** Upgrades refused, by reason (`full`, `draining`, `closed`). */
  readonly refused: Readonly<Record<string, number>>;
  /** Connections cut off by the server, by reason (`dead`: silent; `slow`: not reading; `protocol`: ws error). */
  readonly terminated: Readonly<Record<string, number>>;
}

interface Connection {
  readonly ws: WebSocket;
  readonly topics: Set<string>;
  lastSeen: number;
}

const LIMITS = {
  heartbeatMs: 1000,
  historySize: 256,
  maxSubscriptions: 64,
  maxMessageBytes: 4096,
  maxConnections: Number.POSITIVE_INFINITY,
  maxBufferedBytes: 1 << 20,
} as const;

type Limits = { -readonly [K in keyof typeof LIMITS]: number };

function limits(options: StreamServerOptions): Limits {
  const out = { ...LIMITS } as Limits;
  for (const key of Object.keys(LIMITS) as Array<keyof Limits>) {
    const v = options[key] ?? LIMITS[key];
    if (!(v === Number.POSITIVE_INFINITY || (Number.isSafeInteger(v) && v > 0)))
      throw new InvalidArgumentError(`StreamServer ${key}: expected an integer > 0, got ${String(v)}`);
    out[key] = v;
  }
  return out;
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}

function byteLength(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
}

const count = (record: Record<string, number>, key: string) => {
  record[key] = (record[key] ?? 0) + 1;
};

export class StreamServer {
  readonly serverId: string;
  readonly heartbeatMs: number;
  readonly path: string;
  readonly #limits: Limits;
  readonly #allowTopic: (topic: string) => boolean;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<Connection>();
  readonly #topics: TopicTable<Connection>;
  readonly #detach: Array<() => void> = [];
  readonly #timer: ReturnType<typeof setInterval>;
  #owned: Server | undefined;
  #draining: string | undefined;
  #closing: Promise<void> | undefined;
  #messagesIn = 0;
  #messagesOut = 0;
  #published = 0;
  readonly #dropped: Record<StreamErrorCode, number> = {
    malformed: 0,
    'too-large': 0,
    'too-many-subscriptions': 0,
    'forbidden-topic': 0,
  };
  readonly #refused: Record<string, number> = {};
  readonly #terminated: Record<string, number> = {};

  constructor(options: StreamServerOptions) {
    if (!options || typeof options.serverId !== 'string' || options.serverId === '')
      throw new InvalidArgumentError('StreamServer serverId: expected a non-empty string');
    this.serverId = options.serverId;
    this.#limits = limits(options);
    this.#topics = new TopicTable(this.#limits.historySize);
    this.heartbeatMs = this.#limits.heartbeatMs;
    this.#allowTopic = options.allowTopic ?? (() => true);
    this.path = options.path ?? DEFAULT_STREAM_PATH;
    if (!this.path.startsWith('/'))
      throw new InvalidArgumentError(`StreamServer path: expected a path starting with /, got ${this.path}`);
    // Frames between maxMessageBytes and maxPayload are refused with an error frame; past
    // maxPayload ws closes the connection (1009) rather than buffer them.
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: Math.max(this.#limits.maxMessageBytes * 4, 64 * 1024),
    });
    this.#timer = setInterval(() => this.#beat(), this.heartbeatMs);
    this.#timer.unref();
  }

  /** Creates a StreamServer on its own node:http server, listening on `host:port` at `path`. */
  static async listen(options: StreamListenOptions): Promise<StreamServer> {
    const stream = new StreamServer(options);
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('expected a WebSocket upgrade\n');
    });
    stream.attach(http);
    stream.#owned = http;
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await stream.close();
      throw error;
    }
    return stream;
  }

  /** With `listen`: the address it listens on. */
  get address(): AddressInfo | undefined {
    const a = this.#owned?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /** With `listen`: the `ws://host:port/path` URL to put in the list document. */
  get url(): string | undefined {
    const a = this.address;
    if (!a) return undefined;
    return `ws://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}${this.path}`;
  }

  /** Serves upgrades on `path` of an existing HTTP server; returns a function that detaches. */
  attach(server: Server, path: string = this.path): () => void {
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      let pathname = '';
      try {
        pathname = new URL(req.url ?? '/', 'http://x').pathname;
      } catch {}
      if (pathname === path) this.handleUpgrade(req, socket, head);
      else if (server.listenerCount('upgrade') === 1) this.#refuse(socket, '404 Not Found');
    };
    server.on('upgrade', onUpgrade);
    const detach = () => void server.off('upgrade', onUpgrade);
    this.#detach.push(detach);
    return detach;
  }

  /** Takes one upgrade request (for callers that route upgrades themselves). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const refusal = this.#closing
      ? 'closed'
      : this.#draining !== undefined
        ? 'draining'
        : this.#connections.size >= this.#limits.maxConnections
          ? 'full'
          : undefined;
    if (refusal === undefined) this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
    else {
      count(this.#refused, refusal);
      this.#refuse(socket, '503 Service Unavailable');
    }
  }

  /** Current connections (the server's "users" for the list). */
  get connections(): number {
    return this.#connections.size;
  }

  /** Whether `drain` was called. */
  get draining(): boolean {
    return this.#draining !== undefined;
  }

  /** The latest seq of a topic (0 when nothing was published). */
  latestSeq(topic: string): number {
    return this.#topics.get(topic)?.seq ?? 0;
  }

  /**
   * Publishes `data` (any JSON value) on `topic` to its subscribers and keeps it in the topic's
   * history; returns its seq. Throws InvalidArgumentError for a bad topic, data that is not
   * JSON, or an explicit seq that is not greater than the topic's latest.
   */
  publish(topic: string, data: unknown, options: PublishOptions = {}): number {
    if (!isTopic(topic)) throw new InvalidArgumentError(`publish: invalid topic ${JSON.stringify(topic)}`);
    const t = this.#topics.ensure(topic);
    const seq = options.seq ?? t.seq + 1;
    if (!isSeq(seq) || seq <= t.seq)
      throw new InvalidArgumentError(`publish ${topic}: expected an integer seq > ${t.seq}, got ${seq}`);
    let frame: string | undefined;
    try {
      frame = data === undefined ? undefined : encodeFrame({ type: 'data', topic, seq, data });
    } catch {}
    if (frame === undefined)
      throw new InvalidArgumentError(`publish ${topic}: expected a JSON value as data`);
    this.#topics.record(t, seq, frame);
    this.#published += 1;
    for (const c of t.subscribers) this.#send(c, frame);
    return seq;
  }

  stats(): StreamServerStats {
    return {
      connections: this.#connections.size,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      published: this.#published,
      dropped: { ...this.#dropped },
      refused: { ...this.#refused },
      terminated: { ...this.#terminated },
    };
  }

  /** Tells every client to move (`goaway`) and refuses new connections; existing ones are served until they leave. */
  drain(reason = 'draining'): void {
    if (this.#draining !== undefined || this.#closing) return;
    this.#draining = reason;
    const frame = encodeFrame({ type: 'goaway', reason });
    for (const c of this.#connections) this.#send(c, frame);
  }

  /**
   * Stops serving: refuses new upgrades, closes every connection (a 1001 close frame, or at once
   * without one with `terminate`, as a crash would), detaches, and closes its own HTTP server.
   */
  close(options: { terminate?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.terminate === true);
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  async #shutdown(terminate: boolean): Promise<void> {
    clearInterval(this.#timer);
    const owned = this.#owned;
    const httpClosed = owned ? new Promise((resolve) => owned.close(resolve)) : undefined;
    await Promise.all(
      [...this.#connections].map(
        ({ ws }) =>
          new Promise<void>((resolve) => {
            ws.once('close', () => resolve());
            if (terminate) return void ws.terminate();
            ws.close(1001, 'server closing');
            setTimeout(() => ws.terminate(), 1000).unref(); // a peer that does not answer is cut off
          }),
      ),
    );
    for (const detach of this.#detach.splice(0)) detach();
    owned?.closeAllConnections();
    await httpClosed;
    await new Promise((resolve) => this.#wss.close(resolve));
  }

  #refuse(socket: Duplex, status: string): void {
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  }

  #accept(ws: WebSocket): void {
    ws.on('error', () => {});
    if (this.#closing || this.#draining !== undefined) return void ws.close(1013, 'not accepting');
    const c: Connection = { ws, topics: new Set(), lastSeen: Date.now() };
    this.#connections.add(c);
    ws.on('error', (error: Error & { code?: string }) => {
      // ws closes the connection itself after a protocol error (a frame past maxPayload included).
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#dropped['too-large'] += 1;
      this.#end(c, 'protocol');
    });
    ws.on('close', () => this.#forget(c));
    ws.on('pong', () => {
      c.lastSeen = Date.now();
    });
    ws.on('message', (data, isBinary) => this.#receive(c, data, isBinary));
    const version = STREAM_PROTOCOL_VERSION;
    this.#send(c, { type: 'welcome', server: this.serverId, heartbeatMs: this.heartbeatMs, version });
  }

  #receive(c: Connection, data: RawData, isBinary: boolean): void {
    this.#messagesIn += 1;
    c.lastSeen = Date.now();
    const max = this.#limits.maxMessageBytes;
    if (byteLength(data) > max) {
      this.#refuseFrame(c, 'too-large', `expected a frame of at most ${max} bytes`);
      return;
    }
    const frame = isBinary ? undefined : parseClientFrame(rawText(data));
    if (!frame)
      this.#refuseFrame(c, 'malformed', 'expected a JSON text frame {op: subscribe|unsubscribe|ping}');
    else if (frame.op === 'ping') this.#send(c, { type: 'pong', id: frame.id });
    else if (frame.op === 'unsubscribe') this.#unsubscribe(c, frame.topic);
    else this.#subscribe(c, frame.topic, frame.since);
  }

  #subscribe(c: Connection, topic: string, since: number | undefined): void {
    if (!this.#allowed(topic)) {
      this.#refuseFrame(c, 'forbidden-topic', `topic ${topic} is not offered here`, topic);
      return;
    }
    const max = this.#limits.maxSubscriptions;
    if (!c.topics.has(topic) && c.topics.size >= max) {
      this.#refuseFrame(c, 'too-many-subscriptions', `expected at most ${max} subscriptions`, topic);
      return;
    }
    const t = this.#topics.ensure(topic);
    c.topics.add(topic);
    t.subscribers.add(c);
    this.#send(c, { type: 'subscribed', topic, seq: t.seq });
    // Replay what is still held after `since`.
    if (since !== undefined) for (const frame of this.#topics.after(t, since)) this.#send(c, frame);
  }

  #unsubscribe(c: Connection, topic: string): void {
    if (c.topics.delete(topic)) this.#topics.leave(topic, c);
  }

  #allowed(topic: string): boolean {
    try {
      return this.#allowTopic(topic) === true;
    } catch {
      return false;
    }
  }

  #refuseFrame(c: Connection, code: StreamErrorCode, message: string, topic?: string): void {
    this.#dropped[code] += 1;
    this.#send(c, { type: 'error', code, message, ...(topic === undefined ? {} : { topic }) });
  }

  /** Sends a frame (or its encoded text) to one client, unless it is gone or not reading. */
  #send(c: Connection, frame: ServerFrame | string): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    if (c.ws.bufferedAmount > this.#limits.maxBufferedBytes) this.#end(c, 'slow');
    else {
      c.ws.send(typeof frame === 'string' ? frame : encodeFrame(frame));
      this.#messagesOut += 1;
    }
  }

  #beat(): void {
    const now = Date.now();
    const frame = encodeFrame({ type: 'heartbeat', t: now });
    for (const c of this.#connections) {
      if (now - c.lastSeen > 3 * this.heartbeatMs) this.#end(c, 'dead');
      else {
        this.#send(c, frame);
        if (c.ws.readyState === WebSocket.OPEN) c.ws.ping();
      }
    }
  }

  /** Cuts a connection off (no close handshake) and counts why. */
  #end(c: Connection, reason: string): void {
    if (!this.#connections.has(c)) return;
    count(this.#terminated, reason);
    this.#forget(c);
    c.ws.terminate();
  }

  #forget(c: Connection): void {
    if (!this.#connections.delete(c)) return;
    for (const name of c.topics) this.#topics.leave(name, c);
    c.topics.clear();
  }
}
