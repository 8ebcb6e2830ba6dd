/**
 * The member side of the probe protocol (seed 000; docs/protocols/probe.md): a game world, a
 * voice bridge or any UDP service embeds a `ProbeMember`, and one UDP socket then carries both
 * the protocol and the application's own datagrams.
 *
 * - `FORWARD` from an allowed assigner (P0.2): the member creates the session and answers the
 *   client directly with a `PROBE_RESPONSE` carrying its own address (P0.5), never larger than
 *   the client's original request (`requestSize`): never an amplifier.
 * - `NOTIFY` from an allowed assigner (P0.3): the assigner answered; the member only records it.
 * - `PROBE` straight from a client or a health check: a size-bounded `PROBE_RESPONSE`.
 * - `HEARTBEAT` → `HEARTBEAT_ACK` (P0.8); `LOBBY` → `LOBBY_RESPONSE` (P0.7); `BYE` ends a session.
 * - Application data from a session's endpoint → `message` event; from anyone else: dropped.
 * - `RELAY` from a configured peer with a valid mac (P0.9, relay.ts): the data goes to this
 *   member's sessions in that incarnation (`relay` event); `broadcast` relays to the peers.
 *
 * Bad input from the network is counted (`stats().dropped`, by reason) and dropped; nothing a
 * datagram contains makes this class throw.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { emptyLoad } from '../core/model.js';
import { InvalidArgumentError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { normalizeAddress, parseAddress, unmapIPv4 } from './address.js';
import { decode, encode, encodedSize, isProbeDatagram, splitBatch } from './codec.js';
import {
  type MemberSession,
  type SessionEndReason,
  type SessionRecord,
  SessionTable,
  tokenHex,
} from './member-sessions.js';
import { type Endpoint, ErrorCode, MAX_MESSAGE_BYTES, type ProbeMessage } from './messages.js';
import { Relay, type RelayedData } from './relay.js';

export type { MemberSession, SessionEndReason } from './member-sessions.js';
export type { RelayedData } from './relay.js';

/** Length of a session token on the wire. */
const SESSION_BYTES = 16;
const DEFAULT_INCARNATION = 'default';

export interface ProbeMemberOptions {
  /** Member id, as the registry and the assigner know it (the `member` field of answers). */
  readonly id: string;
  /** The application this member serves (or `apps` for several). */
  readonly app?: string;
  readonly apps?: readonly string[];
  /** Site name put in answers (default `local`). */
  readonly site?: string;
  /**
   * Incarnations (worlds, rooms) this member runs. When given, sessions for any other
   * incarnation are refused; when not, any incarnation is accepted. A request that names none
   * gets the first one (or `default`).
   */
  readonly incarnations?: readonly string[];
  /** Address to bind (default 127.0.0.1; `::` or `0.0.0.0` for every interface). */
  readonly host?: string;
  /** Port to bind (0, the default, picks a free one). */
  readonly port?: number;
  /**
   * The member's own unique address put in `PROBE_RESPONSE` (P0.5): what clients send to.
   * Default: the bound address and port. An unspecified address (`0.0.0.0`, `::`) tells the
   * client to use the address the answer came from.
   */
  readonly advertise?: Endpoint;
  /** Addresses (any port) allowed to send FORWARD and NOTIFY. Default: loopback only. */
  readonly assigners?: readonly string[];
  /** A session with no traffic for this long ends (default 30 000 ms). */
  readonly sessionIdleMs?: number;
  /** When given, the member publishes load reports: users = live sessions, `sessions.<incarnation>`. */
  readonly registry?: Registry;
  /** Report period (default 1000 ms). */
  readonly reportIntervalMs?: number;
  /** Clock (default Date.now). */
  readonly now?: () => number;
  /**
   * Members of other sites hosting the same incarnations (P0.9): `broadcast` sends them the data
   * as RELAY, and RELAY is taken from their addresses only. Needs `relaySecret`.
   */
  readonly peers?: readonly Endpoint[];
  /** The secret every peer shares (at least 16 bytes): RELAY datagrams carry its HMAC. */
  readonly relaySecret?: string | Uint8Array;
}

export interface ProbeMemberEvents {
  /** A session was created (FORWARD or NOTIFY). */
  session: [session: MemberSession];
  /** Application data from a session's endpoint. */
  message: [session: MemberSession, data: Uint8Array];
  /** Data a peer relayed (already sent to this member's sessions in that incarnation). */
  relay: [relayed: RelayedData];
  /** A session ended. */
  end: [session: MemberSession, reason: SessionEndReason];
  /** The socket failed (emitted only when someone listens; always counted). */
  error: [error: Error];
}

export interface ProbeMemberStats {
  /** Datagrams received, by kind (`data` for application data). */
  readonly received: Readonly<Record<string, number>>;
  /** Datagrams sent, by kind (`data` for application data). */
  readonly sent: Readonly<Record<string, number>>;
  /** Datagrams dropped, by reason. */
  readonly dropped: Readonly<Record<string, number>>;
  readonly sendErrors: number;
  readonly reportErrors: number;
  readonly sessions: number;
  /** RELAY datagrams taken from peers (`in`, after the checks) and sent to them (`out`). */
  readonly relayed: { readonly in: number; readonly out: number };
}

/** Canonical text of an address (IPv4-mapped IPv6 as plain IPv4), for addresses from config or fields. */
function canonical(address: string): string {
  const plain = unmapIPv4(address);
  return normalizeAddress(plain) ?? plain;
}

/**
 * The same for a source address reported by the socket, per datagram and so cheaply: the
 * kernel already writes dotted IPv4 and RFC 5952 IPv6; only the IPv4-mapped form needs undoing.
 */
function sourceAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function bump(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}

export class ProbeMember extends EventEmitter<ProbeMemberEvents> {
  readonly id: string;
  readonly apps: readonly string[];
  readonly site: string;
  readonly #options: ProbeMemberOptions;
  readonly #incarnations: readonly string[] | undefined;
  readonly #assigners: ReadonlySet<string> | undefined;
  readonly #idleMs: number;
  readonly #now: () => number;
  #socket: Socket | undefined;
  /** The socket is udp6: IPv4 peers are reached through their IPv4-mapped address. */
  #ipv6 = false;
  #advertise: Endpoint | undefined;
  #bound: Endpoint | undefined;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #reportTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #sessions: SessionTable;
  readonly #relay: Relay | undefined;
  #relayedIn = 0;
  #relayedOut = 0;
  readonly #received: Record<string, number> = {};
  readonly #sent: Record<string, number> = {};
  readonly #dropped: Record<string, number> = {};
  #sendErrors = 0;
  #reportErrors = 0;

  constructor(options: ProbeMemberOptions) {
    super();
    if (typeof options.id !== 'string' || options.id === '')
      throw new InvalidArgumentError('id: expected a non-empty member id');
    const apps = options.apps ?? (options.app === undefined ? [] : [options.app]);
    if (apps.length === 0) throw new InvalidArgumentError('app: expected an app name (or apps: [...])');
    if (options.assigners)
      for (const a of options.assigners)
        if (parseAddress(unmapIPv4(a)) === undefined)
          throw new InvalidArgumentError(`assigners: expected IP addresses, got ${JSON.stringify(a)}`);
    if (options.advertise && parseAddress(options.advertise.address) === undefined)
      throw new InvalidArgumentError(
        `advertise.address: expected an IPv4 or IPv6 address, got ${JSON.stringify(options.advertise.address)}`,
      );
    this.id = options.id;
    this.apps = [...apps];
    this.site = options.site ?? 'local';
    this.#options = options;
    this.#incarnations =
      options.incarnations && options.incarnations.length > 0 ? options.incarnations : undefined;
    this.#assigners = options.assigners ? new Set(options.assigners.map(canonical)) : undefined;
    if (options.peers && options.peers.length > 0 && options.relaySecret === undefined)
      throw new InvalidArgumentError('relaySecret: expected the secret the peers share (peers are set)');
    this.#relay =
      options.peers && options.peers.length > 0 && options.relaySecret !== undefined
        ? new Relay({
            peers: options.peers,
            secret: options.relaySecret,
            member: options.id,
            site: options.site ?? 'local',
          })
        : undefined;
    this.#idleMs = options.sessionIdleMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    this.#sessions = new SessionTable(this.#now, (record, reason) => this.emit('end', record, reason));
  }

  /** Binds the socket and starts the timers; resolves with the bound address. */
  async start(): Promise<Endpoint> {
    if (this.#socket) throw new InvalidArgumentError('start: the member is already started');
    if (this.#closed) throw new InvalidArgumentError('start: the member is closed');
    const host = this.#options.host ?? '127.0.0.1';
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.#options.port ?? 0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (error) => {
      this.#sendErrors += 1;
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    socket.on('message', (data, rinfo) => this.#receive(data, rinfo));
    const info = socket.address();
    this.#ipv6 = info.family === 'IPv6';
    this.#bound = { address: sourceAddress(info.address), port: info.port };
    this.#advertise = this.#options.advertise ?? this.#bound;
    const sweepMs = Math.max(10, Math.min(1000, Math.floor(this.#idleMs / 4)));
    this.#sweepTimer = setInterval(() => this.expireIdle(), sweepMs);
    this.#sweepTimer.unref();
    if (this.#options.registry) {
      void this.#report();
      this.#reportTimer = setInterval(() => void this.#report(), this.#options.reportIntervalMs ?? 1000);
      this.#reportTimer.unref();
    }
    return this.#bound;
  }

  /** The bound address (after `start`). */
  get address(): Endpoint {
    if (!this.#bound) throw new InvalidArgumentError('address: the member is not started');
    return this.#bound;
  }

  /** The address clients are told to use (after `start`). */
  get advertised(): Endpoint {
    if (!this.#advertise) throw new InvalidArgumentError('advertised: the member is not started');
    return this.#advertise;
  }

  /** Live sessions (one per client endpoint). */
  sessions(): MemberSession[] {
    return [...this.#sessions.values()];
  }

  /** A session by id (hex of its token, or any alias). */
  session(id: string): MemberSession | undefined {
    return this.#sessions.byId(id);
  }

  /**
   * Sends application data to a session's client. Returns false when the session is unknown
   * or the member is closed. Throws InvalidArgumentError when `data` would read as a probe
   * message (bytes 2..3 = 0xFFFF): frame your data so that it cannot.
   */
  send(session: MemberSession | string, data: Uint8Array | string): boolean {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (isProbeDatagram(bytes))
      throw new InvalidArgumentError(
        'send: data must not have 0xFFFF in bytes 2..3 (a probe-protocol marker)',
      );
    const record = this.#sessions.byId(typeof session === 'string' ? session : session.id);
    if (!record || !this.#socket) return false;
    this.#transmit(bytes, record.endpoint, 'data');
    return true;
  }

  /**
   * Sends application data to every session of `incarnation` (but `except`) and, with `peers`,
   * to the peers as one RELAY each (P0.9); returns how many sessions here got it. Throws
   * InvalidArgumentError for data that reads as a probe message, like `send`.
   */
  broadcast(incarnation: string, data: Uint8Array | string, except?: MemberSession | string): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (isProbeDatagram(bytes))
      throw new InvalidArgumentError(
        'broadcast: data must not have 0xFFFF in bytes 2..3 (a probe-protocol marker)',
      );
    const skip = except === undefined ? undefined : typeof except === 'string' ? except : except.id;
    const count = this.#deliver(
      incarnation,
      bytes,
      skip === undefined ? undefined : this.#sessions.byId(skip),
    );
    const relay = this.#relay;
    if (relay && this.#socket) {
      const sealed = relay.seal(incarnation, bytes);
      if (!sealed) this.#drop('relay-too-large');
      else
        for (const peer of relay.peers) {
          this.#transmit(sealed, peer, 'RELAY');
          this.#relayedOut += 1;
        }
    }
    return count;
  }

  /** Sends `bytes` to the sessions of `incarnation` here (but `skip`); returns how many. */
  #deliver(incarnation: string, bytes: Uint8Array, skip?: SessionRecord): number {
    if (!this.#socket) return 0;
    let count = 0;
    for (const record of this.#sessions.values()) {
      if (record.incarnation !== incarnation || record === skip) continue;
      this.#transmit(bytes, record.endpoint, 'data');
      count += 1;
    }
    return count;
  }

  /** Ends sessions idle for longer than `sessionIdleMs`; returns how many (the timer calls it too). */
  expireIdle(): number {
    return this.#sessions.expire(this.#idleMs);
  }

  /** Counters by kind and by drop reason. */
  stats(): ProbeMemberStats {
    return {
      received: { ...this.#received },
      sent: { ...this.#sent },
      dropped: { ...this.#dropped },
      sendErrors: this.#sendErrors,
      reportErrors: this.#reportErrors,
      sessions: this.#sessions.size,
      relayed: { in: this.#relayedIn, out: this.#relayedOut },
    };
  }

  /** Ends every session (`end` with reason `closed`), stops the timers and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    clearInterval(this.#reportTimer);
    this.#sessions.clear('closed');
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------------

  #drop(reason: string): void {
    bump(this.#dropped, reason);
  }

  #transmit(bytes: Uint8Array, to: Endpoint, kind: string): void {
    const socket = this.#socket;
    if (!socket) return;
    bump(this.#sent, kind);
    const address = this.#ipv6 && !to.address.includes(':') ? `::ffff:${to.address}` : to.address;
    try {
      socket.send(bytes, to.port, address, (error) => {
        if (error) this.#sendErrors += 1;
      });
    } catch {
      this.#sendErrors += 1;
    }
  }

  /** Encodes and sends `message` unless it is larger than `budget` (counted as `answer-too-large`). */
  #answer(message: ProbeMessage, to: Endpoint, budget: number): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encode(message);
    } catch {
      this.#drop('unencodable-answer');
      return false;
    }
    if (bytes.length > budget) {
      this.#drop('answer-too-large');
      return false;
    }
    this.#transmit(bytes, to, message.kind);
    return true;
  }

  #error(requestId: number, code: number, text: string, to: Endpoint, budget: number): void {
    const full: ProbeMessage = { kind: 'ERROR', requestId, error: { code, message: text } };
    let size = Number.POSITIVE_INFINITY;
    try {
      size = encodedSize(full);
    } catch {
      // fall through to the short form
    }
    if (size <= budget) this.#answer(full, to, budget);
    else this.#answer({ kind: 'ERROR', requestId, error: { code, message: '' } }, to, budget);
  }

  #receive(data: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    const from: Endpoint = { address: sourceAddress(rinfo.address), port: rinfo.port };
    if (!isProbeDatagram(data)) {
      this.#data(data, from);
      return;
    }
    const decoded = decode(data);
    if (!decoded.ok) {
      this.#drop(decoded.error);
      return;
    }
    const message = decoded.message;
    bump(this.#received, message.kind);
    const size = data.length;
    switch (message.kind) {
      case 'FORWARD':
      case 'NOTIFY':
        this.#fromAssigner(message, from);
        return;
      case 'PROBE':
        this.#probe(message, from, size);
        return;
      case 'HEARTBEAT':
        this.#heartbeat(message, from, size);
        return;
      case 'LOBBY':
        this.#lobby(message, from, size);
        return;
      case 'BYE': {
        const record = this.#known(message, from);
        if (record) this.#sessions.end(record, 'bye');
        return;
      }
      case 'RELAY':
        this.#relayIn(message, data, from);
        return;
      case 'NOTIFY_BATCH':
        this.#notifyBatch(message, from);
        return;
      default:
        this.#drop('unexpected-kind');
    }
  }

  #data(data: Buffer, from: Endpoint): void {
    const record = this.#sessions.byEndpoint(from);
    if (!record) {
      this.#drop('unknown-endpoint');
      return;
    }
    bump(this.#received, 'data');
    this.#sessions.touch(record);
    this.emit('message', record, data);
  }

  /** A peer's RELAY: checked, then sent to the sessions here; never relayed again (no loops). */
  #relayIn(message: ProbeMessage, bytes: Buffer, from: Endpoint): void {
    if (!this.#relay) {
      this.#drop('unknown-peer');
      return;
    }
    const opened = this.#relay.open(bytes, message, from);
    if (!opened.ok) {
      this.#drop(opened.reason);
      return;
    }
    const { relayed } = opened;
    if (isProbeDatagram(relayed.data)) {
      this.#drop('relay-probe-data');
      return;
    }
    this.#relayedIn += 1;
    this.#deliver(relayed.incarnation, relayed.data);
    this.emit('relay', relayed);
  }

  #allowedAssigner(address: string): boolean {
    return this.#assigners ? this.#assigners.has(address) : isLoopback(address);
  }

  /** The incarnation a request gets, or undefined when this member does not run it. */
  #incarnationFor(requested: string | undefined): string | undefined {
    if (!this.#incarnations) return requested ?? DEFAULT_INCARNATION;
    if (requested === undefined) return this.#incarnations[0];
    return this.#incarnations.includes(requested) ? requested : undefined;
  }

  /** NOTIFY_BATCH: the NOTIFY messages in its `data`, back to back, each with its own length. */
  #notifyBatch(message: ProbeMessage, from: Endpoint): void {
    if (!this.#allowedAssigner(from.address)) {
      this.#drop('not-assigner');
      return;
    }
    const batch = message.data;
    if (!batch || batch.length === 0) {
      this.#drop('missing-field');
      return;
    }
    for (const one of splitBatch(batch)) {
      if (one === undefined) {
        this.#drop('bad-batch');
        return;
      }
      const decoded = decode(one);
      if (!decoded.ok) this.#drop(decoded.error);
      else if (decoded.message.kind !== 'NOTIFY') this.#drop('bad-batch');
      else {
        bump(this.#received, 'NOTIFY');
        this.#fromAssigner(decoded.message, from);
      }
    }
  }

  #fromAssigner(message: ProbeMessage, from: Endpoint): void {
    if (!this.#allowedAssigner(from.address)) {
      this.#drop('not-assigner');
      return;
    }
    const client = message.endpoint && {
      address: canonical(message.endpoint.address),
      port: message.endpoint.port,
    };
    if (!client || client.port === 0 || !message.session || !message.app) {
      this.#drop('missing-field');
      return;
    }
    const forward = message.kind === 'FORWARD';
    if (forward && message.requestSize === undefined) {
      this.#drop('missing-field');
      return;
    }
    const budget = Math.min(message.requestSize ?? 0, MAX_MESSAGE_BYTES);
    if (!this.apps.includes(message.app)) {
      this.#drop('unknown-app');
      if (forward)
        this.#error(message.requestId, ErrorCode.UNKNOWN_APP, `unknown app: ${message.app}`, client, budget);
      return;
    }
    const incarnation = this.#incarnationFor(message.incarnation);
    if (incarnation === undefined) {
      this.#drop('unknown-incarnation');
      if (forward)
        this.#error(message.requestId, ErrorCode.NO_MEMBER, 'incarnation not served here', client, budget);
      return;
    }
    const existing = this.#sessions.byEndpoint(client);
    const same = existing && existing.app === message.app && existing.incarnation === incarnation;
    if (forward) {
      // A retransmitted probe (or a client coming back) keeps its session: answer with it.
      const token = same ? existing.token : message.session;
      const answer: ProbeMessage = {
        kind: 'PROBE_RESPONSE',
        requestId: message.requestId,
        endpoint: this.#advertise,
        app: message.app,
        incarnation,
        session: token,
        member: this.id,
        site: this.site,
      };
      if (!this.#answer(answer, client, budget)) return;
    }
    if (same) {
      // A retransmitted probe or a duplicate NOTIFY: the client may hold either token, so both
      // name the session (a FORWARD was answered with the existing one above).
      this.#sessions.alias(existing, message.session);
      this.#sessions.touch(existing);
      if (message.user !== undefined) existing.user = message.user;
      return;
    }
    const record = this.#sessions.create(message.session, {
      app: message.app,
      incarnation,
      user: message.user,
      endpoint: client,
    });
    this.emit('session', record);
  }

  /** The session a message names, when it comes from that session's endpoint. */
  #known(message: ProbeMessage, from: Endpoint): SessionRecord | undefined {
    if (!message.session) {
      this.#drop('missing-field');
      return undefined;
    }
    const record = this.#sessions.byId(tokenHex(message.session));
    if (!record) {
      this.#drop('unknown-session');
      return undefined;
    }
    if (record.endpoint.address !== from.address || record.endpoint.port !== from.port) {
      this.#drop('wrong-endpoint');
      return undefined;
    }
    this.#sessions.touch(record);
    return record;
  }

  #probe(message: ProbeMessage, from: Endpoint, size: number): void {
    const app = message.app ?? this.apps[0]!;
    if (!this.apps.includes(app)) {
      this.#drop('unknown-app');
      this.#error(message.requestId, ErrorCode.UNKNOWN_APP, `unknown app: ${app}`, from, size);
      return;
    }
    const record = this.#sessions.byEndpoint(from);
    const mine = record && record.app === app ? record : undefined;
    if (mine) this.#sessions.touch(mine);
    const incarnation = mine?.incarnation ?? this.#incarnationFor(message.incarnation);
    if (incarnation === undefined) {
      this.#drop('unknown-incarnation');
      this.#error(message.requestId, ErrorCode.NO_MEMBER, 'incarnation not served here', from, size);
      return;
    }
    // Without a session this only says "alive, serving app/incarnation" (health checks).
    this.#answer(
      {
        kind: 'PROBE_RESPONSE',
        requestId: message.requestId,
        endpoint: this.#advertise,
        app,
        incarnation,
        session: mine?.token,
        member: this.id,
        site: this.site,
      },
      from,
      size,
    );
  }

  #heartbeat(message: ProbeMessage, from: Endpoint, size: number): void {
    const record = this.#known(message, from);
    if (!record) {
      this.#error(message.requestId, ErrorCode.UNKNOWN_SESSION, 'unknown session', from, size);
      return;
    }
    this.#answer(
      {
        kind: 'HEARTBEAT_ACK',
        requestId: message.requestId,
        session: message.session,
        seq: message.seq ?? 0,
      },
      from,
      size,
    );
  }

  #lobby(message: ProbeMessage, from: Endpoint, size: number): void {
    const record = this.#known(message, from);
    if (!record) {
      this.#error(message.requestId, ErrorCode.UNKNOWN_SESSION, 'unknown session', from, size);
      return;
    }
    const users: string[] = [];
    for (const other of this.#sessions.values())
      if (other.app === record.app && other.incarnation === record.incarnation)
        users.push(other.user ?? other.id.slice(0, 8));
    // The endpoint is validated by the session, so the answer may exceed the request; it still
    // has to fit one message: drop names from the end until it does.
    const body: { app: string; incarnation: string; member: string; users: string[]; more?: number } = {
      app: record.app,
      incarnation: record.incarnation,
      member: this.id,
      users,
    };
    const total = users.length;
    for (;;) {
      const answer: ProbeMessage = { kind: 'LOBBY_RESPONSE', requestId: message.requestId, body };
      let fits = false;
      try {
        fits = encodedSize(answer) <= MAX_MESSAGE_BYTES;
      } catch {
        fits = false;
      }
      if (fits || body.users.length === 0) {
        this.#answer(answer, from, MAX_MESSAGE_BYTES);
        return;
      }
      body.users = body.users.slice(0, Math.floor(body.users.length * 0.9));
      body.more = total - body.users.length;
    }
  }

  async #report(): Promise<void> {
    const registry = this.#options.registry;
    if (!registry || this.#closed) return;
    const custom: Record<string, number> = {};
    for (const incarnation of this.#incarnations ?? []) custom[`sessions.${incarnation}`] = 0;
    for (const record of this.#sessions.values()) {
      const key = `sessions.${record.incarnation}`;
      custom[key] = (custom[key] ?? 0) + 1;
    }
    const sessions = this.#sessions.size;
    try {
      await registry.report(this.id, {
        ...emptyLoad(this.#now()),
        users: sessions,
        connections: sessions,
        custom,
      });
    } catch {
      this.#reportErrors += 1;
    }
  }
}

/** A fresh random session token (for assigners and tests). */
export function newSessionToken(): Uint8Array {
  return new Uint8Array(randomBytes(SESSION_BYTES));
}
