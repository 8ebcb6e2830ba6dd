/**
 * The probe client (seed 000: P0.5 sticky direct traffic, P0.6 catalog, P0.7 lobby, P0.8
 * heartbeats and failover), isomorphic: it speaks through a `DatagramTransport`, so the same
 * logic runs over Node's dgram (`src/client/node.ts`) or any datagram channel a platform offers.
 * Nothing here imports a Node-only module.
 *
 * Life of a client: it probes the balancer (padded to PADDED_REQUEST_BYTES; RETRY → ask again
 * with the cookie), gets an assignment from whoever answers (in forward mode the member itself), and
 * from then on sends every datagram to the assigned member's endpoint only — never to the
 * balancer again. It sends HEARTBEAT every `heartbeatMs` or every `heartbeatEvery` messages;
 * when `misses` heartbeats in a row get no ACK within `heartbeatTimeoutMs` (or the member says
 * it does not know the session), it stops all traffic to that member at once, emits `lost`,
 * probes the balancer again with full-jitter backoff until it is placed, and emits `reassigned`.
 *
 * While the client is lost (or closed), `send` sends nothing and returns false: datagrams are
 * not queued, since stale real-time data is worse than none.
 */
import { InvalidArgumentError, ProbeRejectedError, ProbeStateError, ProbeTimeoutError } from '../errors.js';
import { normalizeAddress, unmapIPv4 } from '../probe/address.js';
import { type BackoffOptions, backoffDelay } from '../probe/backoff.js';
import { decode, encode, isProbeDatagram } from '../probe/codec.js';
import { formatEndpoint, parseEndpoint } from '../probe/host-port.js';
import { type Endpoint, ErrorCode, PADDED_REQUEST_BYTES, type ProbeMessage } from '../probe/messages.js';

export { type BackoffOptions, backoffDelay } from '../probe/backoff.js';
export { formatEndpoint, parseEndpoint } from '../probe/host-port.js';
export type { Endpoint } from '../probe/messages.js';

/** A datagram channel: Node's dgram in `usher/client` for Node, anything else elsewhere. */
export interface DatagramTransport {
  /** Sends one datagram; never throws for network reasons (report them through `onError`). */
  send(bytes: Uint8Array, to: Endpoint): void;
  /** Registers the receiver of every datagram that arrives (`from` as the network reports it). */
  onMessage(listener: (bytes: Uint8Array, from: Endpoint) => void): void;
  /** Optional: registers the receiver of transport errors (failed sends). */
  onError?(listener: (error: Error) => void): void;
  /** Releases the channel (after flushing what was sent). */
  close(): void | Promise<void>;
}

export interface ProbeClientOptions {
  /** The balancer's one public address: `{ address, port }` or `host:port` (`[v6]:port`). */
  readonly balancer: Endpoint | string;
  readonly app: string;
  /** The incarnation (world, room) to join; default: whichever the balancer picks. */
  readonly incarnation?: string;
  /** A name shown in lobbies. */
  readonly user?: string;
  /** Heartbeat period T in ms (default 1000). */
  readonly heartbeatMs?: number;
  /** Also send a heartbeat after this many application messages (N, default 50). */
  readonly heartbeatEvery?: number;
  /** How long a heartbeat waits for its ACK (default heartbeatMs). */
  readonly heartbeatTimeoutMs?: number;
  /** Consecutive unanswered heartbeats that mean the member is lost (default 3). */
  readonly misses?: number;
  /** How long one probe, catalog or lobby request waits for its answer (default 1000 ms). */
  readonly probeTimeoutMs?: number;
  /** Requests sent before `connect`, `catalog` or `lobby` give up (default 4). Re-probing after a loss never gives up. */
  readonly probeAttempts?: number;
  /** Backoff between attempts (default base 100 ms, max 5000 ms), full jitter. */
  readonly backoff?: BackoffOptions;
  /** Random source in [0, 1) for the backoff jitter (default Math.random). */
  readonly random?: () => number;
  /** The datagram channel; the client owns it and closes it on `close()`. */
  readonly transport: DatagramTransport;
}

/** Where the balancer placed the client. */
export interface ProbeAssignment {
  /** Member id. */
  readonly member: string;
  /** The member's own address: every datagram goes there (P0.5). */
  readonly endpoint: Endpoint;
  /** Session id (hex of the 16-byte token). */
  readonly session: string;
  readonly app: string;
  readonly incarnation: string;
  readonly site: string;
}

export type LostReason = 'heartbeat-timeout' | 'unknown-session';
export type ProbeClientState = 'idle' | 'assigning' | 'assigned' | 'lost' | 'closed';

export interface ProbeClientEvents {
  /** Application data from the assigned member. */
  message: [data: Uint8Array];
  /** The member stopped answering; traffic to it has stopped and re-probing has begun. */
  lost: [reason: LostReason];
  /** Placed again after a loss. */
  reassigned: [assignment: ProbeAssignment];
  /** A transport failure or a refused re-probe (the client keeps trying). */
  error: [error: Error];
  /** `close()` finished. */
  closed: [];
}

export interface ProbeClientStats {
  readonly sent: number;
  readonly received: number;
  readonly heartbeats: number;
  readonly acks: number;
  readonly missed: number;
  readonly lost: number;
  readonly reassigned: number;
  /** Datagrams dropped, by reason (`foreign-source`, `not-assigned`, decode errors, ...). */
  readonly dropped: Readonly<Record<string, number>>;
}

// ---------------------------------------------------------------------------------------------
// small helpers

type AnyListener = (...args: unknown[]) => void;

/** A minimal typed event emitter (no `node:events` in the isomorphic client). Emitting with no listener is a no-op, `error` included. */
export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  readonly #listeners = new Map<keyof E, AnyListener[]>();

  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as unknown as AnyListener);
    this.#listeners.set(event, list);
    return this;
  }

  once<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const wrapper = (...args: E[K]) => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  off<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const list = this.#listeners.get(event);
    const i = list ? list.indexOf(listener as unknown as AnyListener) : -1;
    if (list && i >= 0) list.splice(i, 1);
    return this;
  }

  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const listener of [...list]) listener(...args);
  }
}

function endpointKey(endpoint: Endpoint): string {
  const plain = unmapIPv4(endpoint.address);
  return `${normalizeAddress(plain) ?? plain}|${endpoint.port}`;
}

function isUnspecified(address: string): boolean {
  const canonical = normalizeAddress(address);
  return canonical === '0.0.0.0' || canonical === '::';
}

/** A PROBE_RESPONSE that carries everything an assignment needs. */
function isCompleteAssignment(message: ProbeMessage): boolean {
  return message.endpoint !== undefined && message.session !== undefined && message.member !== undefined;
}

function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function randomRequestId(): number {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) return c.getRandomValues(new Uint32Array(1))[0]!;
  return Math.floor(Math.random() * 0x1_0000_0000);
}

const utf8 = new TextEncoder();

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0))
    throw new InvalidArgumentError(`${name}: expected a number > 0, got ${String(v)}`);
  return v;
}

interface Reply {
  readonly message: ProbeMessage;
  readonly from: Endpoint;
}

/** Replies to one request (and its retransmissions), collected until taken; `abort` ends every wait. */
class Round {
  readonly ids = new Set<number>();
  /** When set, replies must come from this endpoint (key). */
  readonly source: string | undefined;
  readonly #inbox: Reply[] = [];
  #wake: (() => void) | undefined;
  aborted = false;

  constructor(source?: string) {
    this.source = source;
  }

  push(reply: Reply): void {
    this.#inbox.push(reply);
    this.#wake?.();
  }

  abort(): void {
    this.aborted = true;
    this.#wake?.();
  }

  get waiting(): boolean {
    return this.#inbox.length > 0;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** The next reply, or undefined after `ms` (or on abort). */
  async take(ms: number): Promise<Reply | undefined> {
    if (this.#inbox.length === 0 && !this.aborted) await this.#sleep(ms);
    return this.aborted ? undefined : this.#inbox.shift();
  }

  /** Waits `ms` unless a reply arrives (or abort) first. */
  async pause(ms: number): Promise<void> {
    if (this.#inbox.length > 0 || this.aborted || ms <= 0) return;
    await this.#sleep(ms);
  }
}

interface AskOptions {
  readonly kind: 'PROBE' | 'CATALOG' | 'LOBBY';
  readonly expect: 'PROBE_RESPONSE' | 'CATALOG_RESPONSE' | 'LOBBY_RESPONSE';
  readonly to: Endpoint;
  readonly fields: Partial<ProbeMessage>;
  readonly attempts: number;
  /** Back off before the first attempt too (re-probing after a loss). */
  readonly delayFirst?: boolean;
  /** Replies must come from `to` (lobby). */
  readonly strictSource?: boolean;
  readonly padded: boolean;
}

// ---------------------------------------------------------------------------------------------

export class ProbeClient extends Emitter<ProbeClientEvents> {
  readonly #transport: DatagramTransport;
  readonly #balancer: Endpoint;
  readonly #app: string;
  readonly #incarnation: string | undefined;
  readonly #user: string | undefined;
  readonly #heartbeatMs: number;
  readonly #heartbeatEvery: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #misses: number;
  readonly #probeTimeoutMs: number;
  readonly #probeAttempts: number;
  readonly #backoff: BackoffOptions;
  readonly #random: () => number;

  #state: ProbeClientState = 'idle';
  #assignment: ProbeAssignment | undefined;
  #memberKey = '';
  #token: Uint8Array | undefined;
  #cookie: Uint8Array | undefined;
  readonly #rounds = new Set<Round>();
  #beatTimer: ReturnType<typeof setTimeout> | undefined;
  #sinceBeat = 0;
  #seq = 0;
  /** Unacknowledged heartbeats, in send order: seq → its request id and ACK deadline. */
  readonly #pendingBeats = new Map<number, { requestId: number; timer: ReturnType<typeof setTimeout> }>();
  #missed = 0;
  #closing: Promise<void> | undefined;
  #stats = { sent: 0, received: 0, heartbeats: 0, acks: 0, missed: 0, lost: 0, reassigned: 0 };
  readonly #dropped: Record<string, number> = {};

  constructor(options: ProbeClientOptions) {
    super();
    if (!options || typeof options.app !== 'string' || options.app === '')
      throw new InvalidArgumentError('app: expected an app name');
    if (!options.transport) throw new InvalidArgumentError('transport: expected a DatagramTransport');
    this.#balancer = parseEndpoint(options.balancer);
    this.#app = options.app;
    this.#incarnation = options.incarnation;
    this.#user = options.user;
    this.#heartbeatMs = positive('heartbeatMs', options.heartbeatMs, 1000);
    this.#heartbeatEvery = Math.floor(positive('heartbeatEvery', options.heartbeatEvery, 50));
    this.#heartbeatTimeoutMs = positive('heartbeatTimeoutMs', options.heartbeatTimeoutMs, this.#heartbeatMs);
    this.#misses = Math.floor(positive('misses', options.misses, 3));
    this.#probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs, 1000);
    this.#probeAttempts = Math.floor(positive('probeAttempts', options.probeAttempts, 4));
    this.#backoff = options.backoff ?? {};
    this.#random = options.random ?? Math.random;
    this.#transport = options.transport;
    this.#transport.onMessage((bytes, from) => this.#receive(bytes, from));
    this.#transport.onError?.((error) => {
      this.#drop('transport-error');
      this.emit('error', error);
    });
  }

  /** Creates a client and probes until it is assigned; rejects (and closes it) when it cannot be. */
  static async connect(options: ProbeClientOptions): Promise<ProbeClient> {
    const client = new ProbeClient(options);
    try {
      await client.start();
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  get state(): ProbeClientState {
    return this.#state;
  }

  /** The current (or, while lost, the last) assignment. */
  get assignment(): ProbeAssignment {
    if (!this.#assignment) throw new ProbeStateError('assignment', this.#state);
    return this.#assignment;
  }

  /** The balancer this client probes. */
  get balancer(): Endpoint {
    return this.#balancer;
  }

  /**
   * Probes the balancer until assigned (P0.2/P0.3): rejects with ProbeTimeoutError when no
   * attempt is answered, ProbeRejectedError when the balancer refuses (unknown app at once;
   * no member / rate limited after the last attempt).
   */
  async start(): Promise<ProbeAssignment> {
    if (this.#state !== 'idle') throw new ProbeStateError('start', this.#state);
    this.#state = 'assigning';
    let reply: Reply;
    try {
      reply = await this.#ask(this.#probeRequest(this.#incarnation, this.#probeAttempts, false));
    } catch (error) {
      if (this.#state === 'assigning') this.#state = 'idle';
      throw error;
    }
    if (this.#state !== 'assigning') throw new ProbeStateError('start', this.#state);
    return this.#adopt(reply);
  }

  /**
   * Sends application data to the assigned member — only there, never to the balancer (P0.5).
   * Returns false and sends nothing while the client is not assigned (lost, closed). Throws
   * InvalidArgumentError when `data` would read as a probe message (bytes 2..3 = 0xFFFF).
   */
  send(data: Uint8Array | string): boolean {
    const bytes = typeof data === 'string' ? utf8.encode(data) : data;
    if (isProbeDatagram(bytes))
      throw new InvalidArgumentError(
        'send: data must not have 0xFFFF in bytes 2..3 (a probe-protocol marker)',
      );
    if (this.#state !== 'assigned' || !this.#assignment) {
      this.#drop('not-assigned');
      return false;
    }
    this.#transport.send(bytes, this.#assignment.endpoint);
    this.#stats.sent += 1;
    this.#sinceBeat += 1;
    if (this.#sinceBeat >= this.#heartbeatEvery) this.#beat();
    return true;
  }

  /** The balancer's catalog (P0.6): `{ apps: [{ name, incarnations: [{ id, members, users }] }] }`. Works in any state but closed. */
  async catalog(): Promise<unknown> {
    if (this.#state === 'closed') throw new ProbeStateError('catalog', this.#state);
    const reply = await this.#ask({
      kind: 'CATALOG',
      expect: 'CATALOG_RESPONSE',
      to: this.#balancer,
      fields: {},
      attempts: this.#probeAttempts,
      padded: true,
    });
    return reply.message.body;
  }

  /** Who else is in this incarnation on this member (P0.7): `{ app, incarnation, member, users }`. */
  async lobby(): Promise<unknown> {
    if (this.#state !== 'assigned' || !this.#assignment) throw new ProbeStateError('lobby', this.#state);
    const reply = await this.#ask({
      kind: 'LOBBY',
      expect: 'LOBBY_RESPONSE',
      to: this.#assignment.endpoint,
      fields: { session: this.#token },
      attempts: this.#probeAttempts,
      strictSource: true,
      padded: false,
    });
    return reply.message.body;
  }

  stats(): ProbeClientStats {
    return { ...this.#stats, dropped: { ...this.#dropped } };
  }

  /** Says BYE to the member (when assigned), stops every timer and closes the transport. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const wasAssigned = this.#state === 'assigned';
    this.#state = 'closed';
    this.#stopHeartbeats();
    for (const round of this.#rounds) round.abort();
    if (wasAssigned && this.#assignment && this.#token) {
      this.#transport.send(
        encode({ kind: 'BYE', requestId: randomRequestId(), session: this.#token }),
        this.#assignment.endpoint,
      );
    }
    this.#closing = (async () => {
      await this.#transport.close();
      this.emit('closed');
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  #drop(reason: string): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + 1;
  }

  #probeRequest(incarnation: string | undefined, attempts: number, delayFirst: boolean): AskOptions {
    return {
      kind: 'PROBE',
      expect: 'PROBE_RESPONSE',
      to: this.#balancer,
      fields: { app: this.#app, incarnation, user: this.#user },
      attempts,
      delayFirst,
      padded: true,
    };
  }

  /** Sends a request until its answer arrives: RETRY → ask again with the cookie; ERROR → refuse or try again. */
  async #ask(options: AskOptions): Promise<Reply> {
    const round = new Round(options.strictSource ? endpointKey(options.to) : undefined);
    this.#rounds.add(round);
    const target = formatEndpoint(options.to);
    let refused: ProbeRejectedError | undefined;
    try {
      for (let attempt = 0; attempt < options.attempts; attempt++) {
        if (attempt > 0 || options.delayFirst)
          await round.pause(
            backoffDelay(options.delayFirst ? attempt : attempt - 1, this.#backoff, this.#random),
          );
        let retries = 0;
        if (!round.waiting) this.#request(round, options);
        for (;;) {
          if (round.aborted) throw new ProbeStateError(options.kind.toLowerCase(), this.#state);
          const reply = await round.take(this.#probeTimeoutMs);
          if (round.aborted) throw new ProbeStateError(options.kind.toLowerCase(), this.#state);
          if (!reply) break; // no answer in time: next attempt
          const { message } = reply;
          if (message.kind === options.expect) {
            if (options.kind !== 'PROBE' || isCompleteAssignment(message)) return reply;
            this.#drop('incomplete-response');
            continue;
          }
          if (message.kind === 'RETRY' && message.cookie && retries < 3) {
            this.#cookie = message.cookie;
            retries += 1;
            this.#request(round, options);
            continue;
          }
          if (message.kind === 'ERROR' && message.error) {
            const { code } = message.error;
            refused = new ProbeRejectedError(target, code, message.error.message);
            if (code === ErrorCode.UNKNOWN_APP || code === ErrorCode.UNKNOWN_SESSION) throw refused;
            break; // no member / rate limited: back off and ask again
          }
          this.#drop('unexpected-reply');
        }
      }
      throw refused ?? new ProbeTimeoutError(target, this.#probeTimeoutMs, options.attempts);
    } finally {
      this.#rounds.delete(round);
    }
  }

  #request(round: Round, options: AskOptions): void {
    const requestId = randomRequestId();
    round.ids.add(requestId);
    const cookie = options.kind === 'LOBBY' ? undefined : this.#cookie;
    const message: ProbeMessage = {
      ...options.fields,
      kind: options.kind,
      requestId,
      ...(cookie ? { cookie } : {}),
      ...(options.padded ? { padTo: PADDED_REQUEST_BYTES } : {}),
    };
    this.#transport.send(encode(message), options.to);
  }

  /** Takes a PROBE_RESPONSE as the new assignment and starts heartbeats. */
  #adopt({ message, from }: Reply): ProbeAssignment {
    let endpoint = message.endpoint!;
    // An unspecified address means "the address this answer came from".
    if (isUnspecified(endpoint.address))
      endpoint = { address: unmapIPv4(from.address), port: endpoint.port || from.port };
    const assignment: ProbeAssignment = {
      member: message.member!,
      endpoint,
      session: toHex(message.session!),
      app: message.app ?? this.#app,
      incarnation: message.incarnation ?? this.#incarnation ?? 'default',
      site: message.site ?? '',
    };
    this.#assignment = assignment;
    this.#memberKey = endpointKey(endpoint);
    this.#token = message.session;
    this.#state = 'assigned';
    this.#startHeartbeats();
    return assignment;
  }

  #receive(bytes: Uint8Array, from: Endpoint): void {
    if (this.#state === 'closed') return;
    const fromMember = this.#state === 'assigned' && endpointKey(from) === this.#memberKey;
    if (!isProbeDatagram(bytes)) {
      if (!fromMember) {
        this.#drop(this.#state === 'assigned' ? 'foreign-source' : 'not-assigned');
        return;
      }
      this.#stats.received += 1;
      this.emit('message', bytes);
      return;
    }
    const decoded = decode(bytes);
    if (!decoded.ok) {
      this.#drop(decoded.error);
      return;
    }
    const message = decoded.message;
    // Answers to our requests: matched by request id. In forward mode the PROBE_RESPONSE comes
    // from the member, whose address nobody knows in advance, so the source is not checked —
    // except for rounds bound to the member (lobby).
    for (const round of this.#rounds) {
      if (!round.ids.has(message.requestId)) continue;
      if (round.source !== undefined && round.source !== endpointKey(from)) break;
      round.push({ message, from });
      return;
    }
    if (!fromMember) {
      this.#drop('foreign-source');
      return;
    }
    if (message.kind === 'HEARTBEAT_ACK') {
      if (
        message.session &&
        this.#token &&
        toHex(message.session) === toHex(this.#token) &&
        message.seq !== undefined
      )
        this.#ack(message.seq);
      else this.#drop('stale-ack');
      return;
    }
    if (message.kind === 'ERROR' && message.error?.code === ErrorCode.UNKNOWN_SESSION) {
      for (const beat of this.#pendingBeats.values())
        if (beat.requestId === message.requestId) {
          this.#lose('unknown-session');
          return;
        }
    }
    this.#drop('unexpected-kind');
  }

  #startHeartbeats(): void {
    this.#sinceBeat = 0;
    this.#missed = 0;
    this.#scheduleBeat();
  }

  #stopHeartbeats(): void {
    clearTimeout(this.#beatTimer);
    this.#beatTimer = undefined;
    for (const beat of this.#pendingBeats.values()) clearTimeout(beat.timer);
    this.#pendingBeats.clear();
  }

  #scheduleBeat(): void {
    clearTimeout(this.#beatTimer);
    this.#beatTimer = setTimeout(() => this.#beat(), this.#heartbeatMs);
  }

  #beat(): void {
    if (this.#state !== 'assigned' || !this.#assignment || !this.#token) return;
    this.#sinceBeat = 0;
    this.#seq = (this.#seq + 1) >>> 0;
    const seq = this.#seq;
    const requestId = randomRequestId();
    const timer = setTimeout(() => this.#miss(seq), this.#heartbeatTimeoutMs);
    this.#pendingBeats.set(seq, { requestId, timer });
    this.#stats.heartbeats += 1;
    this.#transport.send(
      encode({ kind: 'HEARTBEAT', requestId, session: this.#token, seq }),
      this.#assignment.endpoint,
    );
    this.#scheduleBeat();
  }

  #ack(seq: number): void {
    if (!this.#pendingBeats.has(seq)) {
      this.#drop('stale-ack');
      return;
    }
    // This beat and every older one are answered.
    for (const [s, beat] of this.#pendingBeats) {
      clearTimeout(beat.timer);
      this.#pendingBeats.delete(s);
      if (s === seq) break;
    }
    this.#stats.acks += 1;
    this.#missed = 0;
  }

  #miss(seq: number): void {
    if (!this.#pendingBeats.delete(seq) || this.#state !== 'assigned') return;
    this.#stats.missed += 1;
    this.#missed += 1;
    if (this.#missed >= this.#misses) this.#lose('heartbeat-timeout');
  }

  /** Stops all traffic to the member at once, tells the application, and re-probes. */
  #lose(reason: LostReason): void {
    if (this.#state !== 'assigned') return;
    this.#state = 'lost';
    this.#stopHeartbeats();
    for (const round of this.#rounds) if (round.source !== undefined) round.abort();
    this.#stats.lost += 1;
    this.emit('lost', reason);
    void this.#reassign();
  }

  async #reassign(): Promise<void> {
    const incarnation = this.#assignment?.incarnation ?? this.#incarnation;
    while (this.#state === 'lost') {
      try {
        const reply = await this.#ask(this.#probeRequest(incarnation, Number.POSITIVE_INFINITY, true));
        if (this.#state !== 'lost') return;
        const assignment = this.#adopt(reply);
        this.#stats.reassigned += 1;
        this.emit('reassigned', assignment);
        return;
      } catch (error) {
        if (this.#state !== 'lost') return;
        this.emit('error', error as Error);
        // Refused (e.g. the app vanished): wait the longest backoff, then try again.
        const wait = new Round();
        this.#rounds.add(wait);
        await wait.pause(this.#backoff.maxMs ?? 5000);
        this.#rounds.delete(wait);
      }
    }
  }
}

/** Creates a client over `options.transport` and resolves once it is assigned. */
export function connectWith(options: ProbeClientOptions): Promise<ProbeClient> {
  return ProbeClient.connect(options);
}
