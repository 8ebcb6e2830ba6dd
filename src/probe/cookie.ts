/**
 * Stateless return-routability cookies (docs/protocols/probe.md, "Never an amplifier").
 * Server side only (node:crypto).
 *
 * cookie = HMAC-SHA256(secret, family ‖ address ‖ port ‖ slot)[0..16], with family one byte
 * (4 or 6), address its 4 or 16 bytes, port u16 and slot u32 (big-endian),
 * slot = ⌊unix seconds / slotSeconds⌋. The current and the previous slot are accepted.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { parseAddress, unmapIPv4 } from './address.js';
import type { Endpoint } from './messages.js';

export const COOKIE_BYTES = 16;
const DEFAULT_SLOT_SECONDS = 30;

export interface CookieJarOptions {
  /** HMAC key; a string is taken as UTF-8. Default: USHER_PROBE_SECRET when set, else 32 random bytes. */
  readonly secret?: Uint8Array | string;
  /** Length of a time slot in seconds (default 30). */
  readonly slotSeconds?: number;
  /** Clock in milliseconds since the epoch (default Date.now). */
  readonly now?: () => number;
}

export class CookieJar {
  readonly #secret: Uint8Array;
  readonly #slotMs: number;
  readonly #now: () => number;

  constructor(options: CookieJarOptions = {}) {
    const secret = options.secret ?? (process.env.USHER_PROBE_SECRET || undefined);
    if (secret === undefined) {
      this.#secret = new Uint8Array(randomBytes(32));
    } else {
      const bytes = typeof secret === 'string' ? new TextEncoder().encode(secret) : new Uint8Array(secret);
      if (bytes.length === 0)
        throw new InvalidArgumentError('cookie secret: expected at least 1 byte, got 0');
      this.#secret = bytes;
    }
    const slotSeconds = options.slotSeconds ?? DEFAULT_SLOT_SECONDS;
    if (!(Number.isFinite(slotSeconds) && slotSeconds > 0))
      throw new InvalidArgumentError(`slotSeconds: expected a positive number, got ${String(slotSeconds)}`);
    this.#slotMs = slotSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  /** The 16-byte cookie for `endpoint` in the current slot. Throws InvalidArgumentError for a bad endpoint. */
  make(endpoint: Endpoint): Uint8Array {
    const input = this.#input(endpoint);
    if (input === undefined)
      throw new InvalidArgumentError(
        `endpoint: expected an IPv4 or IPv6 address and a port 0..65535, got ${JSON.stringify(endpoint)}`,
      );
    return this.#mac(input, this.#slot());
  }

  /** True when `cookie` was made for `endpoint` in the current or the previous slot. Never throws. */
  check(endpoint: Endpoint, cookie: Uint8Array | undefined): boolean {
    if (!(cookie instanceof Uint8Array) || cookie.length !== COOKIE_BYTES) return false;
    const input = this.#input(endpoint);
    if (input === undefined) return false;
    const slot = this.#slot();
    // Compute both so the time taken does not depend on which slot matched.
    const current = timingSafeEqual(this.#mac(input, slot), cookie);
    const previous = timingSafeEqual(this.#mac(input, slot - 1), cookie);
    return current || previous;
  }

  #slot(): number {
    return Math.floor(this.#now() / this.#slotMs);
  }

  /** family ‖ address ‖ port, with room for the slot; undefined when the endpoint is not valid. */
  #input(endpoint: Endpoint): Uint8Array | undefined {
    if (typeof endpoint !== 'object' || endpoint === null) return undefined;
    const { address, port } = endpoint;
    if (typeof address !== 'string' || !Number.isInteger(port) || port < 0 || port > 0xffff) return undefined;
    const parsed = parseAddress(unmapIPv4(address));
    if (parsed === undefined) return undefined;
    const input = new Uint8Array(1 + parsed.bytes.length + 2 + 4);
    input[0] = parsed.family;
    input.set(parsed.bytes, 1);
    new DataView(input.buffer).setUint16(1 + parsed.bytes.length, port);
    return input;
  }

  #mac(input: Uint8Array, slot: number): Uint8Array {
    new DataView(input.buffer).setUint32(input.length - 4, slot >>> 0);
    const digest = createHmac('sha256', this.#secret).update(input).digest();
    return new Uint8Array(digest.buffer, digest.byteOffset, COOKIE_BYTES);
  }
}
