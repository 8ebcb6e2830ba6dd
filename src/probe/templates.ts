/**
 * The assigner's per-probe messages — PROBE_RESPONSE (answer mode), NOTIFY (answer mode) and
 * FORWARD (forward mode) — from templates. Each template is encoded once by the codec with the
 * per-probe parts zeroed; a probe then costs a copy and a few writes: the request id, the
 * session, the client's endpoint, the flags, the request size, and the `user` field appended.
 * The bytes are exactly `encode()`'s for the same message (test/probe/templates.test.ts), without
 * its field walk, text encoding and address parsing per message.
 *
 * Templates are cached per app and incarnation (and, for PROBE_RESPONSE, per Member object: the
 * pool view replaces a member's object when anything about it changes). Incarnations of an app
 * that declares none come from clients, so each cache is bounded: it is emptied when full.
 */
import type { Member } from '../core/model.js';
import { InvalidArgumentError } from '../errors.js';
import { parseAddress } from './address.js';
import { encode, putUint16, putUint32 } from './codec.js';
import { type Endpoint, Flag, HEADER_BYTES, type ProbeMessage, Tag } from './messages.js';

/** The codec's bounds for a text field (docs/protocols/probe.md: 1..64 bytes of UTF-8). */
const MAX_TEXT_BYTES = 64;
const SESSION_BYTES = 16;
const TLV_HEADER_BYTES = 3;
/** Templates kept per cache before it is emptied. */
const MAX_TEMPLATES = 1024;
const ZERO_SESSION = new Uint8Array(SESSION_BYTES);
const LONE_SURROGATE = /\p{Cs}/u;
const utf8Encoder = new TextEncoder();

interface Template {
  readonly bytes: Uint8Array;
  /** Offset of the session value. */
  readonly sessionAt: number;
  /** Offset of the requestSize value, or -1. */
  readonly requestSizeAt: number;
  /** The fieldsLength of the template (the `user` field is appended after the fields). */
  readonly fieldsLength: number;
}

/**
 * A datagram to fill (every byte is written): a slice of Node's Buffer pool. A small Uint8Array
 * lives on the V8 heap, and `socket.send` makes V8 move it off the heap first, which costs more
 * than the template.
 */
function outBuffer(size: number): Uint8Array {
  return Buffer.allocUnsafe(size);
}

/** Encodes `message` and finds where its per-probe values sit. */
function makeTemplate(message: ProbeMessage): Template {
  const bytes = encode(message);
  const family = bytes[7];
  const fieldsStart = HEADER_BYTES + (family === 4 ? 4 : family === 6 ? 16 : 0);
  const fieldsLength = (bytes[14]! << 8) | bytes[15]!;
  // No padding: the fields end the message, so `user` can be appended.
  if (fieldsStart + fieldsLength !== bytes.length)
    throw new InvalidArgumentError('template: expected a message without padding');
  let sessionAt = -1;
  let requestSizeAt = -1;
  for (let pos = fieldsStart; pos < bytes.length; ) {
    const tag = bytes[pos]!;
    const at = pos + TLV_HEADER_BYTES;
    if (tag === Tag.session) sessionAt = at;
    else if (tag === Tag.requestSize) requestSizeAt = at;
    pos = at + ((bytes[pos + 1]! << 8) | bytes[pos + 2]!);
  }
  if (sessionAt < 0) throw new InvalidArgumentError('template: expected a session field');
  return { bytes, sessionAt, requestSizeAt, fieldsLength };
}

/** A two-level cache (`a`, then `b`), emptied when it holds MAX_TEMPLATES templates. */
class Cache {
  readonly #map = new Map<string, Map<string, Template>>();
  #size = 0;

  get(a: string, b: string): Template | undefined {
    return this.#map.get(a)?.get(b);
  }

  set(a: string, b: string, t: Template): void {
    if (this.#size >= MAX_TEMPLATES) {
      this.#map.clear();
      this.#size = 0;
    }
    let inner = this.#map.get(a);
    if (inner === undefined) {
      inner = new Map();
      this.#map.set(a, inner);
    }
    inner.set(b, t);
    this.#size++;
  }
}

/** Cache key of an optional incarnation: '' is never one (they are 1..64 bytes). */
function incarnationKey(incarnation: string | undefined): string {
  return incarnation ?? '';
}

function userBytes(user: string): Uint8Array {
  if (LONE_SURROGATE.test(user))
    throw new InvalidArgumentError('user: expected well-formed Unicode, got a lone surrogate');
  const bytes = utf8Encoder.encode(user);
  if (bytes.length < 1 || bytes.length > MAX_TEXT_BYTES)
    throw new InvalidArgumentError(`user: expected 1..${MAX_TEXT_BYTES} bytes of UTF-8, got ${bytes.length}`);
  return bytes;
}

/** What varies per probe in a NOTIFY or a FORWARD. */
export interface ToMember {
  readonly requestId: number;
  readonly session: Uint8Array;
  /** The client's observed endpoint. */
  readonly client: Endpoint;
  readonly user: string | undefined;
}

export class AnswerTemplates {
  /** PROBE_RESPONSE: per Member object, then app and incarnation. */
  #responses = new WeakMap<Member, Cache>();
  #responseCount = 0;
  /** NOTIFY and FORWARD: per kind and the client's address family, then app and incarnation. */
  readonly #toMember = { NOTIFY: [new Cache(), new Cache()], FORWARD: [new Cache(), new Cache()] } as const;

  /**
   * PROBE_RESPONSE: the member's own endpoint `own`, its id and site. Throws
   * InvalidArgumentError when the member cannot be encoded (an id or site over 64 bytes).
   */
  probeResponse(
    member: Member,
    own: Endpoint,
    app: string,
    incarnation: string | undefined,
    requestId: number,
    session: Uint8Array,
  ): Uint8Array {
    let cache = this.#responses.get(member);
    if (cache === undefined) {
      // The WeakMap forgets replaced members; the count only bounds how many caches a
      // long run builds before starting over.
      if (this.#responseCount >= MAX_TEMPLATES) {
        this.#responses = new WeakMap();
        this.#responseCount = 0;
      }
      cache = new Cache();
      this.#responses.set(member, cache);
      this.#responseCount++;
    }
    const key = incarnationKey(incarnation);
    let t = cache.get(app, key);
    if (t === undefined) {
      t = makeTemplate({
        kind: 'PROBE_RESPONSE',
        requestId: 0,
        app,
        ...(incarnation !== undefined ? { incarnation } : {}),
        session: ZERO_SESSION,
        endpoint: own,
        member: member.id,
        site: member.site,
      });
      cache.set(app, key, t);
    }
    const out = outBuffer(t.bytes.length);
    out.set(t.bytes);
    putUint32(out, 8, checkRequestId(requestId));
    out.set(checkSession(session), t.sessionAt);
    return out;
  }

  /** NOTIFY: the client's observed endpoint, the session, `user` when the probe had one. */
  notify(app: string, incarnation: string | undefined, m: ToMember): Uint8Array {
    return this.#fill('NOTIFY', app, incarnation, m, 0, 0);
  }

  /** FORWARD: as NOTIFY, with flag VALIDATED when the probe's cookie checked out and the request size. */
  forward(
    app: string,
    incarnation: string | undefined,
    m: ToMember,
    validated: boolean,
    requestSize: number,
  ): Uint8Array {
    if (!Number.isInteger(requestSize) || requestSize < 0 || requestSize > 0xffff)
      throw new InvalidArgumentError(`requestSize: expected an integer 0..65535, got ${requestSize}`);
    return this.#fill('FORWARD', app, incarnation, m, validated ? Flag.VALIDATED : 0, requestSize);
  }

  #fill(
    kind: 'NOTIFY' | 'FORWARD',
    app: string,
    incarnation: string | undefined,
    m: ToMember,
    flags: number,
    requestSize: number,
  ): Uint8Array {
    const parsed = parseAddress(m.client.address);
    if (parsed === undefined)
      throw new InvalidArgumentError(
        `endpoint.address: expected an IPv4 or IPv6 address, got ${JSON.stringify(m.client.address)}`,
      );
    const port = m.client.port;
    if (!Number.isInteger(port) || port < 0 || port > 0xffff)
      throw new InvalidArgumentError(`endpoint.port: expected an integer 0..65535, got ${port}`);
    const cache = this.#toMember[kind][parsed.family === 4 ? 0 : 1];
    const key = incarnationKey(incarnation);
    let t = cache.get(app, key);
    if (t === undefined) {
      t = makeTemplate({
        kind,
        requestId: 0,
        app,
        ...(incarnation !== undefined ? { incarnation } : {}),
        session: ZERO_SESSION,
        ...(kind === 'FORWARD' ? { requestSize: 0 } : {}),
        endpoint: { address: parsed.family === 4 ? '0.0.0.0' : '::', port: 0 },
      });
      cache.set(app, key, t);
    }
    const user = m.user === undefined ? undefined : userBytes(m.user);
    const size = t.bytes.length + (user ? TLV_HEADER_BYTES + user.length : 0);
    const out = outBuffer(size);
    out.set(t.bytes);
    out[6] = flags;
    putUint32(out, 8, checkRequestId(m.requestId));
    putUint16(out, 12, port);
    out.set(parsed.bytes, HEADER_BYTES);
    out.set(checkSession(m.session), t.sessionAt);
    if (t.requestSizeAt >= 0) putUint16(out, t.requestSizeAt, requestSize);
    if (user) {
      // `user` has the highest tag these messages carry: appended, the fields stay in tag order.
      const at = t.bytes.length;
      out[at] = Tag.user;
      putUint16(out, at + 1, user.length);
      out.set(user, at + TLV_HEADER_BYTES);
      putUint16(out, 0, size);
      putUint16(out, 14, t.fieldsLength + TLV_HEADER_BYTES + user.length);
    }
    return out;
  }
}

function checkRequestId(requestId: number): number {
  if (requestId >>> 0 !== requestId)
    throw new InvalidArgumentError(`requestId: expected an integer 0..4294967295, got ${requestId}`);
  return requestId;
}

function checkSession(session: Uint8Array): Uint8Array {
  if (session.length !== SESSION_BYTES)
    throw new InvalidArgumentError(`session: expected ${SESSION_BYTES} bytes, got ${session.length}`);
  return session;
}
