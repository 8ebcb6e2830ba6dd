/**
 * Everything the assigner sends, through one socket: answers to clients under the answer
 * budget, and FORWARD / NOTIFY to members.
 *
 * Never an amplifier (docs/protocols/probe.md): `toClient` is the only way bytes go back to a
 * client, and it refuses (counting `amplification`) anything larger than the datagram the
 * client sent, unless that datagram carried a valid cookie. Answers that do not fit become a
 * RETRY carrying a cookie when that fits, else nothing.
 *
 * NOTIFYs are batched: those for one member made during one turn of the event loop (a burst of
 * probes read from the socket together) leave as one NOTIFY_BATCH datagram, once the turn ends
 * (setImmediate), followed by the client answers held meanwhile. So a member always has the
 * NOTIFY before the client has its answer, and answer mode sends about one datagram per probe
 * instead of two under load.
 */
import type dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../util/logger.js';
import type { AssignerStats } from './assigner-stats.js';
import { encode } from './codec.js';
import type { CookieJar } from './cookie.js';
import { type Endpoint, ErrorCode, type ProbeMessage } from './messages.js';

/** One datagram as received: who sent it (as observed), how big it was, whether its cookie checked out. */
export interface Request {
  readonly message: ProbeMessage;
  /** The observed source (P0.4), IPv4-mapped addresses unmapped. */
  readonly client: Endpoint;
  /** The source exactly as the socket reported it (the address to send back to). */
  readonly replyAddress: string;
  /** Bytes received: the answer budget. */
  readonly size: number;
  /** The request carried a cookie made for its source. */
  readonly validated: boolean;
}

/** Where a member takes FORWARD and NOTIFY. */
export interface MemberTarget {
  readonly id: string;
  readonly address: string;
  readonly port: number;
}

/** Largest `data` of one NOTIFY_BATCH: the datagram stays under a common 1,500-byte MTU. */
const MAX_BATCH_DATA = 1200;

interface PendingNotify {
  readonly port: number;
  readonly address: string;
  readonly parts: Uint8Array[];
}

const ERROR_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ErrorCode).map(([name, code]) => [code, name]),
);

export class Replies {
  readonly #socket: dgram.Socket;
  readonly #ipv6: boolean;
  readonly #stats: AssignerStats;
  readonly #cookies: CookieJar;
  readonly #logger: Logger;
  /** NOTIFYs not yet sent, by member address and port. */
  readonly #pending = new Map<string, PendingNotify>();
  /** Client answers held until the pending NOTIFYs have gone: bytes, port, address. */
  #held: Array<[Uint8Array, number, string]> = [];
  #scheduled = false;

  constructor(socket: dgram.Socket, stats: AssignerStats, cookies: CookieJar, logger: Logger) {
    this.#socket = socket;
    this.#ipv6 = socket.address().family === 'IPv6';
    this.#stats = stats;
    this.#cookies = cookies;
    this.#logger = logger;
  }

  /**
   * Sends `answer` (a message, or its bytes) when it fits the request (or the request carried a
   * valid cookie); otherwise a RETRY with a cookie when that fits, else nothing. True when
   * `answer` was sent.
   */
  answerOrRetry(req: Request, answer: ProbeMessage | Uint8Array, beforeAnswer?: () => void): boolean {
    const bytes = answer instanceof Uint8Array ? answer : this.#encode(answer);
    if (!bytes) return false;
    if (this.fits(req, bytes)) {
      // e.g. NOTIFY the member first, so the session exists before the client's first datagram.
      beforeAnswer?.();
      return this.toClient(req, bytes);
    }
    this.retry(req);
    return false;
  }

  /** True when `bytes` may go to the client: the request carried a valid cookie, or they are no larger. */
  fits(req: Request, bytes: Uint8Array): boolean {
    return req.validated || bytes.length <= req.size;
  }

  /** Instead of an answer that does not fit: a RETRY with a cookie when that fits, else nothing. */
  retry(req: Request): void {
    const retry = this.#encode({
      kind: 'RETRY',
      requestId: req.message.requestId,
      cookie: this.#cookies.make(req.client),
    });
    if (!retry) return;
    if (retry.length > req.size) this.#stats.drop('amplification');
    else if (this.toClient(req, retry)) this.#stats.retry(req.message.kind);
  }

  /** An ERROR answer: with its text when that fits the budget, without it when only that fits, else none. */
  error(req: Request, code: number, text: string): void {
    const base = { kind: 'ERROR', requestId: req.message.requestId } as const;
    let bytes = this.#encode({ ...base, error: { code, message: text } });
    if (bytes && !req.validated && bytes.length > req.size)
      bytes = this.#encode({ ...base, error: { code, message: '' } });
    if (bytes && this.toClient(req, bytes)) this.#stats.error(ERROR_NAMES[code] ?? String(code));
  }

  /**
   * The only way bytes go back to a client. Never an amplifier: unless the request carried a
   * valid cookie, nothing larger than the request is sent (counted as `amplification`).
   */
  toClient(req: Request, bytes: Uint8Array): boolean {
    if (!req.validated && bytes.length > req.size) {
      this.#stats.drop('amplification');
      return false;
    }
    this.#stats.bytes('out', bytes.length);
    if (this.#scheduled) this.#held.push([bytes, req.client.port, req.replyAddress]);
    else this.#send(bytes, req.client.port, req.replyAddress, this.#sentToClient);
    return true;
  }

  /** A NOTIFY (its bytes) for a member: sent, batched with others for it, when this turn ends. */
  notify(target: MemberTarget, bytes: Uint8Array): void {
    const to = this.#memberAddress(target);
    const key = `${to}|${target.port}`;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = { port: target.port, address: to, parts: [] };
      this.#pending.set(key, pending);
    }
    pending.parts.push(bytes);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Sends the pending NOTIFYs (one NOTIFY_BATCH per member and ~1.2 kB), then the held answers. */
  readonly flush = (): void => {
    this.#scheduled = false;
    for (const p of this.#pending.values()) {
      let i = 0;
      while (i < p.parts.length) {
        let size = 0;
        let j = i;
        while (j < p.parts.length && (j === i || size + p.parts[j]!.length <= MAX_BATCH_DATA))
          size += p.parts[j++]!.length;
        const bytes = j - i === 1 ? p.parts[i]! : this.#batch(p.parts.slice(i, j), size);
        if (bytes) {
          this.#stats.bytes('out-member', bytes.length);
          this.#send(bytes, p.port, p.address, this.#sentToMember);
        }
        i = j;
      }
    }
    this.#pending.clear();
    const held = this.#held;
    this.#held = [];
    for (const [bytes, port, address] of held) this.#send(bytes, port, address, this.#sentToClient);
  };

  #batch(parts: Uint8Array[], size: number): Uint8Array | undefined {
    const data = new Uint8Array(size);
    let pos = 0;
    for (const part of parts) {
      data.set(part, pos);
      pos += part.length;
    }
    return this.#encode({ kind: 'NOTIFY_BATCH', requestId: 0, data });
  }

  #memberAddress(target: MemberTarget): string {
    // A dual-stack IPv6 socket reaches IPv4 members through mapped addresses.
    return this.#ipv6 && net.isIPv4(target.address) ? `::ffff:${target.address}` : target.address;
  }

  /** FORWARD (a message, or its bytes) to a member at once (trusted: no budget). */
  toMember(target: MemberTarget, message: ProbeMessage | Uint8Array): void {
    const bytes = message instanceof Uint8Array ? message : this.#encode(message);
    if (!bytes) return;
    this.#stats.bytes('out-member', bytes.length);
    this.#send(bytes, target.port, this.#memberAddress(target), this.#sentToMember);
  }

  // The send callbacks are made once, not per datagram (a closure per send showed in profiles);
  // Node's send error names the address and port it was for.
  readonly #sentToClient = (err: Error | null): void => {
    if (!err) return;
    this.#stats.drop('send-failed');
    this.#logger.debug({ err }, 'assigner: send to client failed');
  };

  readonly #sentToMember = (err: Error | null): void => {
    if (!err) return;
    this.#stats.drop('send-failed');
    this.#logger.warn({ err }, 'assigner: send to member failed');
  };

  #send(bytes: Uint8Array, port: number, address: string, done: (err: Error | null) => void): void {
    try {
      this.#socket.send(bytes, port, address, done);
    } catch (err) {
      // The socket closed meanwhile.
      done(err as Error);
    }
  }

  #encode(message: ProbeMessage): Uint8Array | undefined {
    try {
      return encode(message);
    } catch (err) {
      this.encodeFailed(err, message.kind);
      return undefined;
    }
  }

  /** Counts and logs a message that could not be encoded (a member id over 64 bytes, ...). */
  encodeFailed(err: unknown, kind: string): void {
    this.#stats.drop('encode-failed');
    this.#logger.warn({ err, kind }, 'assigner: could not encode an answer');
  }
}
