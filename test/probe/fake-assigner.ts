/**
 * Test doubles for the probe protocol: a UDP socket that records what it receives and can wait
 * for it, and a tiny fake assigner (forward or answer mode, optional RETRY) that places clients
 * on real ProbeMembers. Used by the member, client and CLI tests.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { decode, encode, isProbeDatagram } from '../../src/probe/codec.js';
import type { Endpoint, ProbeMessage } from '../../src/probe/messages.js';

export interface Received {
  readonly bytes: Buffer;
  readonly from: Endpoint;
  /** Decoded probe message, when the datagram is one and decodes. */
  readonly message: ProbeMessage | undefined;
}

/** A UDP socket on loopback that keeps every datagram it receives. */
export class TestSocket {
  readonly socket: Socket;
  readonly received: Received[] = [];
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (bytes, rinfo) => {
      const decoded = isProbeDatagram(bytes) ? decode(bytes) : undefined;
      this.received.push({
        bytes,
        from: { address: rinfo.address, port: rinfo.port },
        message: decoded?.ok ? decoded.message : undefined,
      });
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async open(host = '127.0.0.1', port = 0): Promise<TestSocket> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new TestSocket(socket);
  }

  get endpoint(): Endpoint {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  send(data: ProbeMessage | Uint8Array | string, to: Endpoint): Promise<void> {
    const bytes =
      typeof data === 'string' ? Buffer.from(data) : data instanceof Uint8Array ? data : encode(data);
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, to.port, to.address, (e) => (e ? reject(e) : resolve())),
    );
  }

  /** Resolves with the first received datagram (from index `from` on) that matches, or fails at the deadline. */
  async next(match: (r: Received) => boolean = () => true, timeoutMs = 5000, from = 0): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.slice(from).find(match);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching datagram within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for a probe message of `kind` (optionally with this request id). */
  nextMessage(kind: ProbeMessage['kind'], requestId?: number, timeoutMs?: number): Promise<ProbeMessage> {
    return this.next(
      (r) => r.message?.kind === kind && (requestId === undefined || r.message.requestId === requestId),
      timeoutMs,
    ).then((r) => r.message!);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

export interface FakeMemberTarget {
  readonly id: string;
  /** Where FORWARD / NOTIFY go, and (answer mode) what the client is told. */
  readonly endpoint: Endpoint;
  readonly site?: string;
}

export interface FakeAssignerOptions {
  mode?: 'forward' | 'answer';
  /** Answer PROBE without a cookie with RETRY first. */
  retryProbe?: boolean;
  /** Answer CATALOG without a cookie with RETRY first (as a real assigner must: the body is large). */
  retryCatalog?: boolean;
  catalog?: unknown;
  /** Never answer anything. */
  silent?: boolean;
  /** Answer every PROBE with this ERROR code. */
  errorCode?: number;
}

/** A stand-in for the assigner: on PROBE, FORWARDs to (or answers for) `target`. */
export class FakeAssigner {
  readonly socket: TestSocket;
  readonly options: FakeAssignerOptions;
  target: FakeMemberTarget | undefined;
  readonly cookie = new Uint8Array(randomBytes(16));

  private constructor(socket: TestSocket, options: FakeAssignerOptions) {
    this.socket = socket;
    this.options = options;
    socket.socket.on('message', (bytes, rinfo) => {
      void this.#handle(bytes, { address: rinfo.address, port: rinfo.port });
    });
  }

  static async start(options: FakeAssignerOptions = {}, target?: FakeMemberTarget): Promise<FakeAssigner> {
    const a = new FakeAssigner(await TestSocket.open(), options);
    a.target = target;
    return a;
  }

  get endpoint(): Endpoint {
    return this.socket.endpoint;
  }

  /** How many datagrams it has received so far. */
  get count(): number {
    return this.socket.received.length;
  }

  #validCookie(m: ProbeMessage): boolean {
    return m.cookie !== undefined && Buffer.from(m.cookie).equals(Buffer.from(this.cookie));
  }

  async #handle(bytes: Buffer, from: Endpoint): Promise<void> {
    if (this.options.silent) return;
    const d = decode(bytes);
    if (!d.ok) return;
    const m = d.message;
    if (m.kind === 'CATALOG') {
      if (this.options.retryCatalog && !this.#validCookie(m))
        return this.socket.send({ kind: 'RETRY', requestId: m.requestId, cookie: this.cookie }, from);
      return this.socket.send(
        { kind: 'CATALOG_RESPONSE', requestId: m.requestId, body: this.options.catalog ?? { apps: [] } },
        from,
      );
    }
    if (m.kind !== 'PROBE') return;
    if (this.options.errorCode !== undefined)
      return this.socket.send(
        { kind: 'ERROR', requestId: m.requestId, error: { code: this.options.errorCode, message: 'no' } },
        from,
      );
    if (this.options.retryProbe && !this.#validCookie(m))
      return this.socket.send({ kind: 'RETRY', requestId: m.requestId, cookie: this.cookie }, from);
    const target = this.target;
    if (!target)
      return this.socket.send(
        { kind: 'ERROR', requestId: m.requestId, error: { code: 2, message: 'no member' } },
        from,
      );
    const session = new Uint8Array(randomBytes(16));
    const common = {
      requestId: m.requestId,
      app: m.app!,
      session,
      ...(m.incarnation !== undefined ? { incarnation: m.incarnation } : {}),
      ...(m.user !== undefined ? { user: m.user } : {}),
    };
    if (this.options.mode === 'answer') {
      await this.socket.send(
        {
          kind: 'PROBE_RESPONSE',
          requestId: m.requestId,
          app: m.app!,
          incarnation: m.incarnation ?? 'default',
          session,
          endpoint: target.endpoint,
          member: target.id,
          site: target.site ?? 'local',
        },
        from,
      );
      return this.socket.send({ kind: 'NOTIFY', ...common, endpoint: from }, target.endpoint);
    }
    return this.socket.send(
      { kind: 'FORWARD', ...common, endpoint: from, requestSize: bytes.length },
      target.endpoint,
    );
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}
