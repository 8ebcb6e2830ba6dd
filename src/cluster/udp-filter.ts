/**
 * The userspace filter of a self-selecting cluster for UDP (seed 002, C2.1 "filter —
 * userspace"): every member joins one multicast group and binds the same port, so every member
 * receives every datagram a client sends to `group:port`; each member computes the connection
 * value (`value.ts`) of the datagram's source and keeps only datagrams whose value lies in its
 * own ranges (`plan.ts`). With ranges that partition the space, each datagram is delivered by
 * exactly one member, and no member talks to another to decide.
 *
 *   const filter = new UdpClusterFilter({ group: '239.78.0.1', port: 7000,
 *     interfaceAddress: '10.78.0.11', memberId: 'm1', ranges: plan.ranges.m1 });
 *   filter.on('message', (data, rinfo, value) => filter.send(reply, rinfo));
 *   await filter.start();
 *   filter.setRanges(newPlan.ranges.m1); // on a plan change, atomically
 *
 * Ranges are this member's own intervals (`plan.ranges[memberId]`), not the whole plan: the
 * member needs nothing else, and the owner of a plan change (cluster role) hands them over.
 *
 * Socket: one udp4 socket with SO_REUSEADDR (all members of one host may share the port too).
 * With a group it is bound to `group:port` (so it receives only that group's datagrams on the
 * port) and joins the group on `interfaceAddress` (kernel's choice when unset). Without a group
 * (tests, a unicast feed) it is bound to `interfaceAddress` (127.0.0.1 by default) and `port`.
 * Replies (`send`) leave from that same socket: bound to a multicast address, the kernel picks
 * the source address by route, so the client sees the member's own unicast address, with the
 * service port as source port.
 *
 * Network input never throws (CONVENTIONS): a datagram whose source cannot be valued is counted
 * as `malformed`, one larger than `maxDatagramBytes` as `oversized`, one outside the ranges as
 * `not-mine`; each is dropped with a 'drop' event. Operator input (options, `setRanges`) throws
 * InvalidArgumentError and changes nothing.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import type { ValueInterval } from './plan.js';
import { type ConnectionValueOptions, connectionValue } from './value.js';

export type UdpDropReason = 'not-mine' | 'malformed' | 'oversized';

export interface UdpClusterFilterOptions {
  /** IPv4 multicast group shared by all members (224.0.0.0/4); unset: unicast on `interfaceAddress`. */
  readonly group?: string;
  /** UDP port of the service, 0..65535 (0: any free port; only sensible without a group). */
  readonly port: number;
  /** This member's IPv4 address on the shared link: where the group is joined (or bound, without a group). */
  readonly interfaceAddress?: string;
  /** This member's id (for logs and stats). */
  readonly memberId: string;
  /** This member's value intervals, inclusive (`plan.ranges[memberId]`); `[]` accepts nothing. */
  readonly ranges: readonly ValueInterval[];
  /** Fields, space and seed of the connection value; every member must use the same. */
  readonly valueOptions?: ConnectionValueOptions;
  /** Datagrams larger than this are dropped as `oversized`; 65507 (the IPv4 maximum) by default. */
  readonly maxDatagramBytes?: number;
}

export interface UdpFilterStats {
  readonly memberId: string;
  /** Datagrams seen (accepted + every drop). */
  readonly received: number;
  readonly accepted: number;
  readonly dropped: Readonly<Record<UdpDropReason, number>>;
  /** Socket errors after start (send failures included). */
  readonly socketErrors: number;
}

const MAX_UDP4_PAYLOAD = 65507;

function isMulticast4(address: string): boolean {
  if (!isIPv4(address)) return false;
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}

/** Validated, sorted, frozen copy of `ranges`; throws InvalidArgumentError. */
function checkRanges(ranges: readonly ValueInterval[]): readonly ValueInterval[] {
  if (!Array.isArray(ranges)) {
    throw new InvalidArgumentError(
      `UdpClusterFilter: ranges: expected an array of [lo, hi], got ${typeof ranges}`,
    );
  }
  const out = ranges.map((r, i) => {
    const ok =
      Array.isArray(r) && r.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] <= r[1];
    if (!ok) {
      throw new InvalidArgumentError(
        `UdpClusterFilter: ranges[${i}]: expected [lo, hi] integers with lo <= hi, got ${JSON.stringify(r)}`,
      );
    }
    return Object.freeze([r[0], r[1]] as const);
  });
  out.sort((a, b) => a[0] - b[0]);
  return Object.freeze(out);
}

/** True when `value` lies in one of the sorted intervals (binary search). */
export function inRanges(ranges: readonly ValueInterval[], value: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (value < a) hi = mid - 1;
    else if (value > b) lo = mid + 1;
    else return true;
  }
  return false;
}

export interface UdpClusterFilterEvents {
  /** A datagram for this member, with its connection value. */
  message: [data: Buffer, rinfo: RemoteInfo, value: number];
  /** A datagram dropped, and why. */
  drop: [reason: UdpDropReason, data: Buffer, rinfo: RemoteInfo];
  /** A socket error after start (only emitted when someone listens; always counted). */
  error: [error: Error];
}

export class UdpClusterFilter extends EventEmitter<UdpClusterFilterEvents> {
  readonly #o: UdpClusterFilterOptions;
  readonly #max: number;
  #ranges: readonly ValueInterval[];
  #socket: Socket | undefined;
  #received = 0;
  #accepted = 0;
  #dropped: Record<UdpDropReason, number> = { 'not-mine': 0, malformed: 0, oversized: 0 };
  #socketErrors = 0;

  constructor(options: UdpClusterFilterOptions) {
    super();
    const { group, port, interfaceAddress, memberId } = options;
    if (group !== undefined && !isMulticast4(group)) {
      throw new InvalidArgumentError(
        `UdpClusterFilter: group: expected an IPv4 multicast address, got ${group}`,
      );
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InvalidArgumentError(`UdpClusterFilter: port: expected an integer 0..65535, got ${port}`);
    }
    if (interfaceAddress !== undefined && !isIPv4(interfaceAddress)) {
      throw new InvalidArgumentError(
        `UdpClusterFilter: interfaceAddress: expected an IPv4 address, got ${interfaceAddress}`,
      );
    }
    if (typeof memberId !== 'string' || memberId === '') {
      throw new InvalidArgumentError(
        `UdpClusterFilter: memberId: expected a non-empty string, got ${memberId}`,
      );
    }
    const max = options.maxDatagramBytes ?? MAX_UDP4_PAYLOAD;
    if (!Number.isInteger(max) || max < 0 || max > MAX_UDP4_PAYLOAD) {
      throw new InvalidArgumentError(`UdpClusterFilter: maxDatagramBytes: expected 0..65507, got ${max}`);
    }
    // Fails loudly now on bad value options rather than counting every datagram as malformed.
    connectionValue({ srcAddress: '0.0.0.0', srcPort: 0 }, options.valueOptions);
    this.#o = options;
    this.#max = max;
    this.#ranges = checkRanges(options.ranges);
  }

  /** This member's intervals in force. */
  get ranges(): readonly ValueInterval[] {
    return this.#ranges;
  }

  /** The bound address and port (after `start`). */
  address(): { address: string; port: number } {
    if (!this.#socket) throw new InvalidArgumentError('UdpClusterFilter: address: not started');
    const a = this.#socket.address();
    return { address: a.address, port: a.port };
  }

  /** Binds the socket and joins the group; resolves when datagrams can arrive. */
  async start(): Promise<void> {
    if (this.#socket) throw new InvalidArgumentError('UdpClusterFilter: start: already started');
    const { group, port, interfaceAddress } = this.#o;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    this.#socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port, address: group ?? interfaceAddress ?? '127.0.0.1' }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      if (group !== undefined) socket.addMembership(group, interfaceAddress);
    } catch (error) {
      this.#socket = undefined;
      socket.close();
      throw error;
    }
    socket.on('message', (data, rinfo) => this.handle(data, rinfo));
    socket.on('error', (error) => {
      this.#socketErrors++;
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
  }

  /**
   * Filters one datagram as if it had arrived on the socket: emits 'message' when its value is
   * in this member's ranges, else counts and emits 'drop'. Never throws. Public so that another
   * receive path (a raw socket, a test) can feed the same filter.
   */
  handle(data: Buffer, rinfo: RemoteInfo): void {
    this.#received++;
    if (!Buffer.isBuffer(data) || data.length > this.#max) {
      this.#drop('oversized', data, rinfo);
      return;
    }
    let value: number;
    try {
      value = connectionValue({ srcAddress: rinfo.address, srcPort: rinfo.port }, this.#o.valueOptions);
    } catch {
      this.#drop('malformed', data, rinfo);
      return;
    }
    // One read of the field: a setRanges() in a listener applies from the next datagram on.
    if (!inRanges(this.#ranges, value)) {
      this.#drop('not-mine', data, rinfo);
      return;
    }
    this.#accepted++;
    this.emit('message', data, rinfo, value);
  }

  #drop(reason: UdpDropReason, data: Buffer, rinfo: RemoteInfo): void {
    this.#dropped[reason]++;
    this.emit('drop', reason, data, rinfo);
  }

  /**
   * Replaces this member's ranges at once (a plan change): the next datagram is judged by the
   * new ones. Throws InvalidArgumentError on bad ranges and keeps the old ones.
   */
  setRanges(ranges: readonly ValueInterval[]): void {
    this.#ranges = checkRanges(ranges);
  }

  /** Sends `data` to `to` from the filter's socket (source: this member's address, the service port). */
  send(data: Uint8Array | string, to: { address: string; port: number }): Promise<void> {
    const socket = this.#socket;
    if (!socket) return Promise.reject(new InvalidArgumentError('UdpClusterFilter: send: not started'));
    return new Promise((resolve, reject) => {
      socket.send(data, to.port, to.address, (error) => {
        if (error) {
          this.#socketErrors++;
          reject(error);
        } else resolve();
      });
    });
  }

  stats(): UdpFilterStats {
    return {
      memberId: this.#o.memberId,
      received: this.#received,
      accepted: this.#accepted,
      dropped: { ...this.#dropped },
      socketErrors: this.#socketErrors,
    };
  }

  /** Leaves the group and closes the socket; safe to call twice. */
  async close(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = undefined;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
