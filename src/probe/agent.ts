/**
 * The agent role (seed 000, member side for servers that do not speak the probe protocol): a
 * sidecar on the member's host that owns the public UDP port. It answers the assigner's
 * FORWARD/NOTIFY, clients' heartbeats and lobby requests itself (a `ProbeMember`), and carries
 * each session's application datagrams to and from the real server (`upstream`, usually on
 * loopback) over one UDP socket per session, so the server sees one distinct peer per client
 * and its answers go back to the right client. The assigner still carries no data: the hop
 * agent ↔ server stays on the member's host.
 */
import { createSocket, type Socket } from 'node:dgram';
import { InvalidArgumentError } from '../errors.js';
import { parseAddress } from './address.js';
import { type MemberSession, ProbeMember, type ProbeMemberOptions, type SessionEndReason } from './member.js';
import type { Endpoint } from './messages.js';

export interface ProbeAgentOptions extends ProbeMemberOptions {
  /** The real server's UDP address (an IP literal) and port. */
  readonly upstream: Endpoint;
  /** Sessions the agent carries at once; a session beyond it is ended at once (default 10 000). */
  readonly maxSessions?: number;
}

export interface ProbeAgentStats {
  /** Datagrams carried client → server (`up`) and server → client (`down`). */
  readonly carried: { readonly up: number; readonly down: number };
  /** Datagrams not carried, by reason. */
  readonly dropped: Readonly<Record<string, number>>;
  /** Sessions with an open upstream socket. */
  readonly upstreamSockets: number;
  readonly upstreamErrors: number;
}

interface Link {
  readonly socket: Socket;
  ready: boolean;
  /** Datagrams received before the socket was bound (sent once it is). */
  pending: Uint8Array[];
}

const MAX_PENDING = 64;

export class ProbeAgent {
  readonly member: ProbeMember;
  readonly upstream: Endpoint;
  readonly #links = new Map<string, Link>();
  readonly #maxSessions: number;
  readonly #dropped: Record<string, number> = {};
  #up = 0;
  #down = 0;
  #errors = 0;
  #closed = false;

  constructor(options: ProbeAgentOptions) {
    if (parseAddress(options.upstream?.address ?? '') === undefined)
      throw new InvalidArgumentError(
        `upstream.address: expected an IPv4 or IPv6 address, got ${JSON.stringify(options.upstream?.address)}`,
      );
    if (
      !Number.isInteger(options.upstream.port) ||
      options.upstream.port < 1 ||
      options.upstream.port > 65535
    )
      throw new InvalidArgumentError(
        `upstream.port: expected 1..65535, got ${String(options.upstream.port)}`,
      );
    this.upstream = { address: options.upstream.address, port: options.upstream.port };
    this.#maxSessions = options.maxSessions ?? 10_000;
    this.member = new ProbeMember(options);
    this.member.on('session', (s) => this.#open(s));
    this.member.on('message', (s, data) => this.#toServer(s, data));
    this.member.on('end', (s, reason) => this.#end(s, reason));
    this.member.on('error', () => {
      this.#errors += 1;
    });
  }

  /** Binds the public socket; resolves with its address. */
  start(): Promise<Endpoint> {
    return this.member.start();
  }

  stats(): ProbeAgentStats {
    return {
      carried: { up: this.#up, down: this.#down },
      dropped: { ...this.#dropped },
      upstreamSockets: this.#links.size,
      upstreamErrors: this.#errors,
    };
  }

  #drop(reason: string): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + 1;
  }

  #open(session: MemberSession): Link | undefined {
    if (this.#closed) return undefined;
    const existing = this.#links.get(session.id);
    if (existing) return existing;
    if (this.#links.size >= this.#maxSessions) {
      this.#drop('too-many-sessions');
      return undefined;
    }
    const socket = createSocket({ type: this.upstream.address.includes(':') ? 'udp6' : 'udp4' });
    const link: Link = { socket, ready: false, pending: [] };
    this.#links.set(session.id, link);
    socket.on('error', () => {
      this.#errors += 1; // e.g. ICMP port unreachable while the server restarts: keep the session
    });
    socket.on('message', (data, rinfo) => {
      // A connected socket only receives from the server; anything else is not ours to carry.
      if (rinfo.port !== this.upstream.port) this.#drop('not-upstream');
      else if (this.member.send(session.id, data)) this.#down += 1;
      else this.#drop('session-gone');
    });
    socket.connect(this.upstream.port, this.upstream.address, () => {
      link.ready = true;
      for (const d of link.pending) this.#send(link, d);
      link.pending = [];
    });
    return link;
  }

  #send(link: Link, data: Uint8Array): void {
    link.socket.send(data, (error) => {
      if (error) this.#errors += 1;
    });
    this.#up += 1;
  }

  #toServer(session: MemberSession, data: Uint8Array): void {
    const link = this.#links.get(session.id) ?? this.#open(session);
    if (!link) return;
    if (link.ready) this.#send(link, data);
    else if (link.pending.length >= MAX_PENDING) this.#drop('upstream-not-ready');
    else link.pending.push(data);
  }

  #end(session: MemberSession, _reason: SessionEndReason): void {
    const link = this.#links.get(session.id);
    if (!link) return;
    this.#links.delete(session.id);
    link.socket.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.member.close();
    for (const link of this.#links.values()) link.socket.close();
    this.#links.clear();
  }
}
