/**
 * The member's session table: who was placed here (by FORWARD or NOTIFY), found by token (for
 * heartbeats, lobby, BYE) and by client endpoint (for application data, which carries no token).
 * One session per client endpoint; a session may be named by several tokens (a retransmitted
 * probe or a duplicate NOTIFY gives the client another one). No I/O.
 */
import type { Endpoint } from './messages.js';

/** A client placed on this member. */
export interface MemberSession {
  /** Hex of the 16-byte session token. */
  readonly id: string;
  /** The token as sent on the wire. */
  readonly token: Uint8Array;
  readonly app: string;
  readonly incarnation: string;
  /** The user name the client gave, if any. */
  readonly user: string | undefined;
  /** The client's address as the assigner observed it (its NAT's, P0.4). */
  readonly endpoint: Endpoint;
  readonly createdAt: number;
  readonly lastSeen: number;
}

export type SessionEndReason = 'bye' | 'idle' | 'replaced' | 'closed';

export interface SessionRecord extends MemberSession {
  user: string | undefined;
  lastSeen: number;
  /** Every token (hex) that names this session. */
  readonly aliases: Set<string>;
}

export function tokenHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Key of an endpoint whose address is in canonical text. */
export function endpointKey(endpoint: Endpoint): string {
  return `${endpoint.address}|${endpoint.port}`;
}

export class SessionTable {
  readonly #byToken = new Map<string, SessionRecord>();
  readonly #byEndpoint = new Map<string, SessionRecord>();
  readonly #now: () => number;
  readonly #onEnd: (record: SessionRecord, reason: SessionEndReason) => void;

  constructor(now: () => number, onEnd: (record: SessionRecord, reason: SessionEndReason) => void) {
    this.#now = now;
    this.#onEnd = onEnd;
  }

  get size(): number {
    return this.#byEndpoint.size;
  }

  /** Every live session (one per endpoint). */
  values(): IterableIterator<SessionRecord> {
    return this.#byEndpoint.values();
  }

  /** By token (hex) or alias. */
  byId(id: string): SessionRecord | undefined {
    return this.#byToken.get(id);
  }

  /** By the client endpoint (canonical address). */
  byEndpoint(endpoint: Endpoint): SessionRecord | undefined {
    return this.#byEndpoint.get(endpointKey(endpoint));
  }

  /** Creates a session; one that held the same endpoint or token ends as `replaced`. */
  create(
    token: Uint8Array,
    fields: { app: string; incarnation: string; user: string | undefined; endpoint: Endpoint },
  ): SessionRecord {
    const id = tokenHex(token);
    const byToken = this.#byToken.get(id);
    if (byToken) this.end(byToken, 'replaced');
    const byEndpoint = this.#byEndpoint.get(endpointKey(fields.endpoint));
    if (byEndpoint) this.end(byEndpoint, 'replaced');
    const now = this.#now();
    const record: SessionRecord = {
      id,
      token: new Uint8Array(token),
      ...fields,
      createdAt: now,
      lastSeen: now,
      aliases: new Set([id]),
    };
    this.#byToken.set(id, record);
    this.#byEndpoint.set(endpointKey(fields.endpoint), record);
    return record;
  }

  /** Lets `token` name `record` too (a session it named before ends as `replaced`). */
  alias(record: SessionRecord, token: Uint8Array): void {
    const id = tokenHex(token);
    const other = this.#byToken.get(id);
    if (other === record) return;
    if (other) this.end(other, 'replaced');
    record.aliases.add(id);
    this.#byToken.set(id, record);
  }

  touch(record: SessionRecord): void {
    record.lastSeen = this.#now();
  }

  end(record: SessionRecord, reason: SessionEndReason): void {
    let removed = false;
    for (const alias of record.aliases)
      if (this.#byToken.get(alias) === record) {
        this.#byToken.delete(alias);
        removed = true;
      }
    const key = endpointKey(record.endpoint);
    if (this.#byEndpoint.get(key) === record) {
      this.#byEndpoint.delete(key);
      removed = true;
    }
    if (removed) this.#onEnd(record, reason);
  }

  /** Ends sessions with no traffic for longer than `idleMs`; returns how many. */
  expire(idleMs: number): number {
    const now = this.#now();
    let count = 0;
    for (const record of [...this.#byEndpoint.values()])
      if (now - record.lastSeen > idleMs) {
        this.end(record, 'idle');
        count += 1;
      }
    return count;
  }

  /** Ends every session. */
  clear(reason: SessionEndReason): void {
    for (const record of [...this.#byEndpoint.values()]) this.end(record, reason);
  }
}
