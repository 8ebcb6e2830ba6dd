/**
 * Server-to-server relay between members of different sites (seed 000, P0.9: "the servers of
 * ASP 20, 21 and 23 may communicate ... using a conventional server-to-server protocol", so that
 * clients placed on different sites share one world). Used by ProbeMember (`peers`,
 * `relaySecret`); the member owns the socket, this module seals and opens the datagrams.
 *
 * A RELAY carries `incarnation`, the sender's `member` and `site`, the application bytes in
 * `data`, and last a `mac`: HMAC-SHA256 with the relay secret over every byte of the datagram
 * before the mac's value, cut to 16 bytes (docs/protocols/probe.md). Nothing is padded, so the
 * mac is always the datagram's last 16 bytes. A receiver takes RELAY only from the addresses of
 * its configured peers and only with a valid mac, and never relays what it received (no loops).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { normalizeAddress, parseAddress, unmapIPv4 } from './address.js';
import { encode } from './codec.js';
import { type Endpoint, MAX_MESSAGE_BYTES, type ProbeMessage, Tag } from './messages.js';

const MAC_BYTES = 16;
/** The mac TLV: tag, u16 length, value. */
const MAC_TLV_BYTES = 3 + MAC_BYTES;

/** A relayed datagram, as delivered to the application (`relay` event of ProbeMember). */
export interface RelayedData {
  readonly incarnation: string;
  readonly data: Uint8Array;
  /** The sending member's id and site (as it says; the mac vouches for them). */
  readonly member: string | undefined;
  readonly site: string | undefined;
  /** The peer endpoint the datagram came from. */
  readonly from: Endpoint;
}

/** Why a RELAY was refused; these are drop reasons in the member's stats. */
export type RelayRefusal = 'unknown-peer' | 'bad-mac' | 'missing-field';

export type RelayOpenResult =
  | { readonly ok: true; readonly relayed: RelayedData }
  | { readonly ok: false; readonly reason: RelayRefusal };

export interface RelayOptions {
  /** Members of other sites hosting the same incarnations: where RELAY goes, whom it is taken from. */
  readonly peers: readonly Endpoint[];
  /** Shared by every peer: UTF-8 text or bytes, at least 16 bytes. */
  readonly secret: string | Uint8Array;
  /** This member's id and site, put in every RELAY. */
  readonly member: string;
  readonly site: string;
}

function canonical(address: string): string {
  const plain = unmapIPv4(address);
  return normalizeAddress(plain) ?? plain;
}

export class Relay {
  readonly peers: readonly Endpoint[];
  readonly #peerAddresses: ReadonlySet<string>;
  readonly #secret: Uint8Array;
  readonly #member: string;
  readonly #site: string;
  #requestId = 0;

  /** Throws InvalidArgumentError for a peer that is not an IP address and port, or a short secret. */
  constructor(options: RelayOptions) {
    const peers = options.peers.map((p, i) => {
      const address = typeof p?.address === 'string' ? canonical(p.address) : '';
      if (parseAddress(address) === undefined)
        throw new InvalidArgumentError(
          `peers[${i}].address: expected an IPv4 or IPv6 address, got ${JSON.stringify(p?.address)}`,
        );
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
        throw new InvalidArgumentError(`peers[${i}].port: expected 1..65535, got ${String(p.port)}`);
      return { address, port: p.port };
    });
    const secret =
      typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
    if (!(secret instanceof Uint8Array) || secret.length < 16)
      throw new InvalidArgumentError(
        `relaySecret: expected at least 16 bytes (shared by every peer), got ${secret instanceof Uint8Array ? secret.length : typeof secret}`,
      );
    this.peers = peers;
    this.#peerAddresses = new Set(peers.map((p) => p.address));
    this.#secret = new Uint8Array(secret);
    this.#member = options.member;
    this.#site = options.site;
  }

  /**
   * The RELAY datagram for `data`, sent as is to every peer; undefined when the data does not fit
   * one message (MAX_MESSAGE_BYTES) or is empty.
   */
  seal(incarnation: string, data: Uint8Array): Uint8Array | undefined {
    if (data.length === 0 || data.length > MAX_MESSAGE_BYTES) return undefined;
    this.#requestId = (this.#requestId + 1) >>> 0;
    const message: ProbeMessage = {
      kind: 'RELAY',
      requestId: this.#requestId,
      incarnation,
      member: this.#member,
      site: this.#site,
      data,
      mac: new Uint8Array(MAC_BYTES),
    };
    let bytes: Uint8Array;
    try {
      bytes = encode(message);
    } catch {
      return undefined; // too large, or an incarnation name the protocol cannot carry
    }
    bytes.set(this.#mac(bytes), bytes.length - MAC_BYTES);
    return bytes;
  }

  /** Checks a decoded RELAY (`bytes` as received, from `from`); never throws. */
  open(bytes: Uint8Array, message: ProbeMessage, from: Endpoint): RelayOpenResult {
    if (!this.#peerAddresses.has(canonical(from.address))) return { ok: false, reason: 'unknown-peer' };
    const n = bytes.length;
    // The mac must be the last field and nothing may follow it.
    if (
      message.mac === undefined ||
      n < MAC_TLV_BYTES ||
      bytes[n - MAC_TLV_BYTES] !== Tag.mac ||
      bytes[n - MAC_TLV_BYTES + 1] !== 0 ||
      bytes[n - MAC_TLV_BYTES + 2] !== MAC_BYTES
    )
      return { ok: false, reason: 'bad-mac' };
    const expected = this.#mac(bytes);
    if (!timingSafeEqual(expected, bytes.subarray(n - MAC_BYTES))) return { ok: false, reason: 'bad-mac' };
    if (message.incarnation === undefined || message.data === undefined)
      return { ok: false, reason: 'missing-field' };
    return {
      ok: true,
      relayed: {
        incarnation: message.incarnation,
        data: message.data,
        member: message.member,
        site: message.site,
        from,
      },
    };
  }

  /** HMAC-SHA256 over every byte before the mac's value, cut to 16 bytes. */
  #mac(bytes: Uint8Array): Uint8Array {
    return createHmac('sha256', this.#secret)
      .update(bytes.subarray(0, bytes.length - MAC_BYTES))
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
