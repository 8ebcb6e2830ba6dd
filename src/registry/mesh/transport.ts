/**
 * The mesh's TCP transport: listener, dialing, framing, the hello/auth handshake and one
 * deduplicated connection ("link") per peer. Nothing received here can throw out of a
 * socket handler: bad input is counted in the stats and dropped.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from './framing.js';
import { type Message, PROTOCOL_VERSION, parseMessage } from './messages.js';
import { type MeshLogger, parseHostPort } from './options.js';
import type { DropReason, StatsCounter } from './stats.js';

/** An established, authenticated connection to one peer. */
export interface Link {
  readonly peerId: string;
  /** The `host:port` the peer advertises. */
  readonly peerAddr: string;
  /** The peer's incarnation when it said hello. */
  readonly peerInc: number;
  send(message: Message): boolean;
}

export interface TransportHooks {
  /** A link is established (after the handshake); it replaces any earlier link to that peer. */
  onReady(link: Link): void;
  onMessage(link: Link, message: Message): void;
  /** An established link closed (not called for a link replaced by a newer one). */
  onClosed(link: Link): void;
}

export interface TransportConfig {
  readonly nodeId: string;
  readonly secret: string | undefined;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly logger: MeshLogger;
  readonly stats: StatsCounter;
  incarnation(): number;
  advertise(): string;
}

export type DialError = 'refused' | 'unreachable' | 'handshake' | 'self' | 'closed';
export type DialResult =
  | { readonly ok: true; readonly link: Link }
  | { readonly ok: false; readonly error: DialError };

type Hello = Extract<Message, { t: 'hello' }>;

class Connection implements Link {
  peerId = '';
  peerAddr = '';
  peerInc = 0;
  state: 'handshake' | 'ready' | 'closed' = 'handshake';
  connected = false;
  authed = false;
  self = false;
  lastError: string | undefined;
  hello: Hello | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  settle: ((result: DialResult) => void) | undefined;
  readonly nonce = randomBytes(16).toString('hex');
  readonly decoder: FrameDecoder;

  constructor(
    readonly socket: Socket,
    readonly outbound: boolean,
    readonly transport: Transport,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
  }

  send(message: Message): boolean {
    return this.transport.write(this, message);
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }
}

function mac(secret: string, nonce: string, responderId: string): string {
  return createHmac('sha256', secret)
    .update(`usher-mesh/${PROTOCOL_VERSION}|${nonce}|${responderId}`)
    .digest('hex');
}

function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class Transport {
  readonly #config: TransportConfig;
  readonly #hooks: TransportHooks;
  readonly #connections = new Set<Connection>();
  readonly #links = new Map<string, Connection>();
  readonly #maxBuffered: number;
  #server: Server | undefined;
  #closed = false;

  constructor(config: TransportConfig, hooks: TransportHooks) {
    this.#config = config;
    this.#hooks = hooks;
    this.#maxBuffered = Math.max(8 * 1024 * 1024, 4 * config.maxFrameBytes);
  }

  /** Starts the listener; resolves with the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => {
        if (this.#closed) socket.destroy();
        else this.#adopt(socket, false);
      });
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        server.on('error', (error) => this.#config.logger.warn?.({ err: error }, 'mesh: listener error'));
        this.#server = server;
        const address = server.address();
        resolve({ host, port: typeof address === 'object' && address ? address.port : port });
      });
    });
  }

  link(peerId: string): Link | undefined {
    return this.#links.get(peerId);
  }

  links(): Link[] {
    return [...this.#links.values()];
  }

  /** Dials `host:port` and completes the handshake. */
  dial(address: string): Promise<DialResult> {
    const target = parseHostPort(address);
    if (this.#closed || !target) return Promise.resolve({ ok: false, error: 'closed' });
    return new Promise((resolve) => {
      const socket = connect({ host: target.host, port: target.port });
      const conn = this.#adopt(socket, true);
      conn.settle = resolve;
    });
  }

  /**
   * Opens a bare TCP connection and closes it: `open` when the kernel accepted it (the process
   * holds its port, even if its event loop is blocked), `refused` when nothing listens.
   */
  probeConnect(address: string, timeoutMs: number): Promise<'open' | 'refused' | 'timeout'> {
    const target = parseHostPort(address);
    if (!target) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      const socket = connect({ host: target.host, port: target.port });
      let settled = false;
      const finish = (outcome: 'open' | 'refused' | 'timeout') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(outcome);
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      timer.unref?.();
      socket.once('connect', () => finish('open'));
      socket.on('error', (error: NodeJS.ErrnoException) =>
        finish(error.code === 'ECONNREFUSED' ? 'refused' : 'timeout'),
      );
    });
  }

  /** Sends to every established link. */
  broadcast(message: Message, except?: string): void {
    for (const conn of this.#links.values()) if (conn.peerId !== except) this.write(conn, message);
  }

  /** Sends one message on a connection; false when it could not be sent. */
  write(conn: Connection, message: Message): boolean {
    if (conn.state === 'closed' || conn.socket.destroyed) return false;
    let frame: Buffer;
    try {
      frame = encodeFrame(message);
    } catch (error) {
      this.#config.logger.warn?.({ err: error, type: message.t }, 'mesh: message could not be encoded');
      return false;
    }
    if (frame.length - 4 > this.#config.maxFrameBytes) {
      this.#config.logger.warn?.({ type: message.t, bytes: frame.length }, 'mesh: frame too large to send');
      return false;
    }
    if (conn.socket.writableLength > this.#maxBuffered) {
      this.#drop(conn, 'slow-peer', 'peer does not read; closing its connection', true);
      return false;
    }
    conn.socket.write(frame);
    this.#config.stats.framesOut += 1;
    this.#config.stats.bytesOut += frame.length;
    return true;
  }

  /** Closes the listener and every connection (pending writes are flushed first). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const server = this.#server;
    const closing = [...this.#connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.socket.destroyed) return resolve();
          conn.socket.once('close', () => resolve());
          conn.socket.end();
          setTimeout(() => conn.socket.destroy(), 250).unref();
        }),
    );
    await Promise.all([
      ...closing,
      new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
    ]);
  }

  #adopt(socket: Socket, outbound: boolean): Connection {
    const { stats, handshakeTimeoutMs, maxFrameBytes } = this.#config;
    stats.connectionsOpened += 1;
    const conn = new Connection(socket, outbound, this, maxFrameBytes);
    this.#connections.add(conn);
    socket.setNoDelay(true);
    conn.timer = setTimeout(() => this.#handshakeTimeout(conn), handshakeTimeoutMs);
    conn.timer.unref?.();
    socket.on('error', (error: NodeJS.ErrnoException) => {
      conn.lastError = error.code ?? error.message;
    });
    socket.on('close', () => this.#onClose(conn));
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk));
    const hello = () => {
      conn.connected = true;
      this.write(conn, {
        t: 'hello',
        v: PROTOCOL_VERSION,
        id: this.#config.nodeId,
        addr: this.#config.advertise(),
        inc: this.#config.incarnation(),
        nonce: conn.nonce,
        auth: this.#config.secret !== undefined,
      });
    };
    if (outbound) socket.once('connect', hello);
    else hello();
    return conn;
  }

  #onData(conn: Connection, chunk: Buffer): void {
    if (conn.state === 'closed') return;
    this.#config.stats.bytesIn += chunk.length;
    const { frames, error } = conn.decoder.push(chunk);
    for (const frame of frames) {
      if (conn.isClosed()) return;
      this.#config.stats.framesIn += 1;
      try {
        this.#onFrame(conn, frame);
      } catch (err) {
        // A bug in a handler must not take the process down; the frame is lost, the link stays.
        this.#config.logger.warn?.({ err, peer: conn.peerId }, 'mesh: error while handling a frame');
      }
    }
    if (error) this.#drop(conn, error, `bad frame (${error})`, true);
  }

  #onFrame(conn: Connection, frame: unknown): void {
    const parsed = parseMessage(frame);
    if (!parsed.ok) {
      this.#drop(conn, parsed.reason, parsed.detail, parsed.reason === 'malformed');
      return;
    }
    const message = parsed.message;
    if (conn.state === 'handshake') {
      this.#handshake(conn, message);
      return;
    }
    if (message.t === 'hello' || message.t === 'auth') {
      this.#drop(conn, 'unexpected', `${message.t} after the handshake`, false);
      return;
    }
    if (this.#links.get(conn.peerId) === conn) this.#hooks.onMessage(conn, message);
  }

  #handshake(conn: Connection, message: Message): void {
    if (!conn.hello) this.#onHello(conn, message);
    else if (this.#config.secret !== undefined && !conn.authed) this.#onAuth(conn, message);
  }

  #onHello(conn: Connection, message: Message): void {
    const { secret, nodeId, logger, stats } = this.#config;
    if (message.t !== 'hello') {
      this.#drop(conn, 'handshake', `${message.t} before hello`, true);
    } else if (message.v !== PROTOCOL_VERSION) {
      stats.drop('version');
      logger.warn?.(
        { remote: conn.socket.remoteAddress, version: message.v, expected: PROTOCOL_VERSION },
        `mesh: refusing a peer that speaks protocol version ${message.v}; this node speaks version ${PROTOCOL_VERSION}`,
      );
      this.#destroy(conn);
    } else if (message.id === nodeId) {
      conn.self = true;
      this.#drop(conn, 'self', 'connected to itself', true);
    } else if (message.auth !== (secret !== undefined)) {
      stats.authFailures += 1;
      const why = secret ? 'has no shared secret' : 'requires a shared secret this node lacks';
      logger.warn?.({ peer: message.id }, `mesh: refusing peer ${message.id}: it ${why}`);
      this.#drop(conn, 'auth', 'secret mismatch', true);
    } else {
      conn.hello = message;
      conn.peerId = message.id;
      conn.peerAddr = message.addr;
      conn.peerInc = message.inc;
      if (secret === undefined) this.#ready(conn);
      else this.write(conn, { t: 'auth', mac: mac(secret, message.nonce, nodeId) });
    }
  }

  #onAuth(conn: Connection, message: Message): void {
    const secret = this.#config.secret ?? '';
    if (message.t !== 'auth' || !sameMac(message.mac, mac(secret, conn.nonce, conn.peerId))) {
      this.#config.stats.authFailures += 1;
      this.#config.logger.warn?.({ peer: conn.peerId }, `mesh: peer ${conn.peerId} failed authentication`);
      this.#drop(conn, 'auth', 'wrong authentication answer', true);
      return;
    }
    conn.authed = true;
    this.#ready(conn);
  }

  #ready(conn: Connection): void {
    clearTimeout(conn.timer);
    conn.state = 'ready';
    const existing = this.#links.get(conn.peerId);
    if (existing && existing !== conn) {
      // Two connections to one peer (both dialled): both ends keep the one dialled by the lower id.
      const dialer = (c: Connection) => (c.outbound ? this.#config.nodeId : c.peerId);
      if (dialer(conn) >= dialer(existing)) {
        conn.state = 'closed';
        conn.socket.end();
        conn.settle?.({ ok: true, link: existing });
        conn.settle = undefined;
        return;
      }
      existing.state = 'closed';
      existing.socket.end();
    } else {
      this.#config.stats.connections += 1;
    }
    this.#links.set(conn.peerId, conn);
    conn.settle?.({ ok: true, link: conn });
    conn.settle = undefined;
    this.#hooks.onReady(conn);
  }

  #handshakeTimeout(conn: Connection): void {
    if (conn.state !== 'handshake') return;
    if (this.#config.secret !== undefined && conn.hello && !conn.authed) {
      this.#config.stats.authFailures += 1;
      this.#drop(conn, 'auth', 'no authentication answer in time', true);
      return;
    }
    this.#config.logger.debug?.({ peer: conn.peerId || undefined }, 'mesh: handshake timed out');
    this.#destroy(conn);
  }

  #drop(conn: Connection, reason: DropReason, detail: string, close: boolean): void {
    this.#config.stats.drop(reason);
    this.#config.logger.debug?.(
      { peer: conn.peerId || conn.socket.remoteAddress, reason, detail },
      'mesh: dropped input',
    );
    if (close) this.#destroy(conn);
  }

  #destroy(conn: Connection): void {
    conn.state = 'closed';
    conn.socket.destroy();
  }

  #onClose(conn: Connection): void {
    conn.state = 'closed';
    clearTimeout(conn.timer);
    this.#connections.delete(conn);
    if (conn.peerId && this.#links.get(conn.peerId) === conn) {
      this.#links.delete(conn.peerId);
      this.#config.stats.connections -= 1;
      if (!this.#closed) this.#hooks.onClosed(conn);
    }
    if (conn.settle) {
      const error: DialError = conn.self
        ? 'self'
        : conn.lastError === 'ECONNREFUSED'
          ? 'refused'
          : conn.connected
            ? 'handshake'
            : 'unreachable';
      conn.settle({ ok: false, error });
      conn.settle = undefined;
    }
  }
}
