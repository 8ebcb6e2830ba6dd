/**
 * The probe protocol's wire format (docs/protocols/probe.md): ProbeMessage ⇄ bytes.
 * Pure and isomorphic: Uint8Array, DataView, TextEncoder/TextDecoder — no Buffer, no `node:`.
 *
 * `encode` is fed by our own code, so a value it cannot encode is a programming error and
 * throws InvalidArgumentError. `decode` is fed by the network and never throws: it returns
 * `{ ok: false, error }` with the reason label of the drop metric.
 */

import { InvalidArgumentError } from '../errors.js';
import { formatAddress, parseAddress } from './address.js';
import {
  type DecodeError,
  type DecodeResult,
  Flag,
  HEADER_BYTES,
  Kind,
  type KindCode,
  type KindName,
  MAX_MESSAGE_BYTES,
  PROBE_TYPE,
  PROBE_VERSION,
  type ProbeFields,
  type ProbeMessage,
  Tag,
} from './messages.js';

/** Text fields that carry 1..64 bytes of UTF-8. */
const MAX_TEXT_BYTES = 64;
const TOKEN_BYTES = 16;
const TLV_HEADER_BYTES = 3;

type FieldName = keyof ProbeFields;
type TextField = 'app' | 'incarnation' | 'member' | 'site' | 'user';

const TEXT_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'app',
  'incarnation',
  'member',
  'site',
  'user',
]);
/** Field names by tag, in tag order (the order `encode` writes them). */
const FIELD_BY_TAG: readonly (FieldName | undefined)[] = (() => {
  const byTag: (FieldName | undefined)[] = [];
  for (const [name, tag] of Object.entries(Tag)) byTag[tag] = name as FieldName;
  return byTag;
})();
const FIELDS_IN_TAG_ORDER: readonly FieldName[] = FIELD_BY_TAG.filter((f): f is FieldName => f !== undefined);
const KIND_BY_CODE: readonly (KindName | undefined)[] = (() => {
  const byCode: (KindName | undefined)[] = [];
  for (const [name, code] of Object.entries(Kind)) byCode[code] = name as KindName;
  return byCode;
})();

const utf8Encoder = new TextEncoder();
/** fatal: invalid UTF-8 is refused; ignoreBOM: a leading U+FEFF is content, not stripped. */
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** A lone surrogate (TextEncoder would silently turn it into U+FFFD). */
const LONE_SURROGATE = /\p{Cs}/u;

// ---------------------------------------------------------------------------------------------
// encode

/** Big-endian u16 at `at`. */
export function putUint16(out: Uint8Array, at: number, value: number): void {
  out[at] = value >>> 8;
  out[at + 1] = value;
}

/** Big-endian u32 at `at`. */
export function putUint32(out: Uint8Array, at: number, value: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

function isUint(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

function checkUint(what: string, value: unknown, max: number): number {
  if (!isUint(value, max))
    throw new InvalidArgumentError(`${what}: expected an integer 0..${max}, got ${String(value)}`);
  return value;
}

function utf8(what: string, value: unknown): Uint8Array {
  if (typeof value !== 'string')
    throw new InvalidArgumentError(`${what}: expected a string, got ${typeof value}`);
  if (LONE_SURROGATE.test(value))
    throw new InvalidArgumentError(`${what}: expected well-formed Unicode, got a lone surrogate`);
  return utf8Encoder.encode(value);
}

/**
 * Text fields already encoded (app, incarnation, member, site names repeat in every answer):
 * string → bytes, at most TEXT_CACHE_SIZE entries, emptied when full. Only valid encodings are
 * kept, and `encode` only copies them, so sharing the bytes is safe.
 */
const textCache = new Map<string, Uint8Array>();
const TEXT_CACHE_SIZE = 1024;

function encodeText(name: TextField, value: unknown): Uint8Array {
  if (typeof value === 'string') {
    const cached = textCache.get(value);
    if (cached !== undefined) return cached;
  }
  const bytes = encodeTextUncached(name, value);
  if (textCache.size >= TEXT_CACHE_SIZE) textCache.clear();
  textCache.set(value as string, bytes);
  return bytes;
}

function encodeTextUncached(name: TextField, value: unknown): Uint8Array {
  const bytes = utf8(name, value);
  if (bytes.length < 1 || bytes.length > MAX_TEXT_BYTES)
    throw new InvalidArgumentError(
      `${name}: expected 1..${MAX_TEXT_BYTES} bytes of UTF-8, got ${bytes.length}`,
    );
  return bytes;
}

function encodeToken(name: 'cookie' | 'session' | 'mac', value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== TOKEN_BYTES) {
    const found = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw new InvalidArgumentError(`${name}: expected ${TOKEN_BYTES} bytes, got ${found}`);
  }
  return value;
}

function encodeField(name: FieldName, value: unknown): Uint8Array {
  if (TEXT_FIELDS.has(name)) return encodeText(name as TextField, value);
  switch (name) {
    case 'cookie':
    case 'session':
    case 'mac':
      return encodeToken(name, value);
    case 'data':
      if (!(value instanceof Uint8Array) || value.length === 0)
        throw new InvalidArgumentError(
          `data: expected 1 or more bytes, got ${value instanceof Uint8Array ? '0 bytes' : typeof value}`,
        );
      return value;
    case 'error': {
      if (typeof value !== 'object' || value === null)
        throw new InvalidArgumentError(`error: expected { code, message }, got ${String(value)}`);
      const { code, message } = value as { code: unknown; message: unknown };
      const text = utf8('error.message', message);
      const out = new Uint8Array(2 + text.length);
      putUint16(out, 0, checkUint('error.code', code, 0xffff));
      out.set(text, 2);
      return out;
    }
    case 'body': {
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch (cause) {
        throw new InvalidArgumentError(
          `body: expected a JSON value, got one JSON.stringify refuses (${String(cause)})`,
        );
      }
      if (typeof json !== 'string')
        throw new InvalidArgumentError(`body: expected a JSON value, got ${typeof value}`);
      return utf8Encoder.encode(json);
    }
    case 'seq': {
      const out = new Uint8Array(4);
      putUint32(out, 0, checkUint('seq', value, 0xffffffff));
      return out;
    }
    case 'requestSize': {
      const out = new Uint8Array(2);
      putUint16(out, 0, checkUint('requestSize', value, 0xffff));
      return out;
    }
    default:
      throw new InvalidArgumentError(`unknown field: ${name}`);
  }
}

interface Plan {
  readonly kind: KindCode;
  readonly flags: number;
  readonly family: 0 | 4 | 6;
  readonly address: Uint8Array | undefined;
  readonly port: number;
  readonly fields: readonly (readonly [tag: number, value: Uint8Array])[];
  readonly fieldsLength: number;
  readonly size: number;
}

function plan(message: ProbeMessage): Plan {
  if (typeof message !== 'object' || message === null)
    throw new InvalidArgumentError(`message: expected an object, got ${String(message)}`);
  const kind = Object.hasOwn(Kind, message.kind) ? Kind[message.kind] : undefined;
  if (kind === undefined)
    throw new InvalidArgumentError(
      `kind: expected one of ${Object.keys(Kind).join(', ')}, got ${String(message.kind)}`,
    );
  checkUint('requestId', message.requestId, 0xffffffff);
  let flags = message.flags === undefined ? 0 : checkUint('flags', message.flags, 0xff);

  let family: 0 | 4 | 6 = 0;
  let address: Uint8Array | undefined;
  let port = 0;
  if (message.endpoint !== undefined) {
    const parsed = parseAddress(message.endpoint.address);
    if (parsed === undefined)
      throw new InvalidArgumentError(
        `endpoint.address: expected an IPv4 or IPv6 address, got ${JSON.stringify(message.endpoint.address)}`,
      );
    family = parsed.family;
    address = parsed.bytes;
    port = checkUint('endpoint.port', message.endpoint.port, 0xffff);
  }

  const fields: [number, Uint8Array][] = [];
  let fieldsLength = 0;
  for (const name of FIELDS_IN_TAG_ORDER) {
    const value = message[name];
    if (value === undefined) continue;
    const bytes = encodeField(name, value);
    fields.push([Tag[name], bytes]);
    fieldsLength += TLV_HEADER_BYTES + bytes.length;
  }

  const natural = HEADER_BYTES + (address?.length ?? 0) + fieldsLength;
  if (natural > MAX_MESSAGE_BYTES)
    throw new InvalidArgumentError(`message: expected at most ${MAX_MESSAGE_BYTES} bytes, got ${natural}`);
  let size = natural;
  if (message.padTo !== undefined) {
    const padTo = checkUint('padTo', message.padTo, MAX_MESSAGE_BYTES);
    if (padTo > natural) {
      size = padTo;
      flags |= Flag.PADDED;
    }
  }
  return { kind, flags, family, address, port, fields, fieldsLength, size };
}

/**
 * The bytes of a message: header, address field, the fields present (in tag order), then
 * zeros up to `padTo` (setting flag PADDED when it pads). Throws InvalidArgumentError for a
 * value it cannot encode.
 */
export function encode(message: ProbeMessage): Uint8Array {
  const p = plan(message);
  // No DataView here: `out.buffer` of a small (on-heap) typed array makes V8 move it off the
  // heap, which cost more than the rest of encode.
  const out = new Uint8Array(p.size);
  putUint16(out, 0, p.size);
  putUint16(out, 2, PROBE_TYPE);
  out[4] = PROBE_VERSION;
  out[5] = p.kind;
  out[6] = p.flags;
  out[7] = p.family;
  putUint32(out, 8, message.requestId);
  putUint16(out, 12, p.port);
  putUint16(out, 14, p.fieldsLength);
  let pos = HEADER_BYTES;
  if (p.address !== undefined) {
    out.set(p.address, pos);
    pos += p.address.length;
  }
  for (const [tag, value] of p.fields) {
    out[pos] = tag;
    putUint16(out, pos + 1, value.length);
    out.set(value, pos + TLV_HEADER_BYTES);
    pos += TLV_HEADER_BYTES + value.length;
  }
  return out;
}

/** The length `encode(message)` would produce (same checks, same throws), without building it. */
export function encodedSize(message: ProbeMessage): number {
  return plan(message).size;
}

// ---------------------------------------------------------------------------------------------
// decode

/** Cheap test for a probe-protocol datagram: at least 4 bytes and bytes 2..3 are 0xFFFF. */
export function isProbeDatagram(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[2] === 0xff && bytes[3] === 0xff;
}

function fail(error: DecodeError): DecodeResult {
  return { ok: false, error };
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The value of one field, or undefined when it is not valid for its tag. */
function decodeField(name: FieldName, value: Uint8Array, view: DataView, at: number): unknown {
  if (TEXT_FIELDS.has(name)) {
    if (value.length < 1 || value.length > MAX_TEXT_BYTES) return undefined;
    return decodeUtf8(value);
  }
  switch (name) {
    case 'cookie':
    case 'session':
    case 'mac':
      return value.length === TOKEN_BYTES ? new Uint8Array(value) : undefined;
    case 'data':
      return value.length > 0 ? new Uint8Array(value) : undefined;
    case 'error': {
      if (value.length < 2) return undefined;
      const message = decodeUtf8(value.subarray(2));
      return message === undefined ? undefined : { code: view.getUint16(at), message };
    }
    case 'body': {
      const text = decodeUtf8(value);
      if (text === undefined || text === '') return undefined;
      try {
        // `null` is a valid body; wrap it so that undefined keeps meaning "invalid".
        return { json: JSON.parse(text) as unknown };
      } catch {
        return undefined;
      }
    }
    case 'seq':
      return value.length === 4 ? view.getUint32(at) : undefined;
    case 'requestSize':
      return value.length === 2 ? view.getUint16(at) : undefined;
    default:
      return undefined;
  }
}

/**
 * Parses and validates a datagram (docs/protocols/probe.md). Never throws. On success the
 * message has `flags`, `endpoint` when the address family is not 0, every field present, and
 * no `padTo`. Unknown tags are skipped.
 */
export function decode(bytes: Uint8Array): DecodeResult {
  if (!(bytes instanceof Uint8Array) || !isProbeDatagram(bytes)) return fail('not-probe');
  const n = bytes.length;
  if (n < HEADER_BYTES) return fail('short');
  if (n > MAX_MESSAGE_BYTES) return fail('too-large');
  const view = new DataView(bytes.buffer, bytes.byteOffset, n);
  if (view.getUint16(0) !== n) return fail('length-mismatch');
  if (bytes[4] !== PROBE_VERSION) return fail('bad-version');
  const kind = KIND_BY_CODE[bytes[5]!];
  if (kind === undefined) return fail('bad-kind');
  const flags = bytes[6]!;
  const family = bytes[7]!;
  if (family !== 0 && family !== 4 && family !== 6) return fail('bad-family');
  const requestId = view.getUint32(8);
  const port = view.getUint16(12);
  const fieldsLength = view.getUint16(14);
  const addressLength = family === 0 ? 0 : family === 4 ? 4 : 16;
  const fieldsStart = HEADER_BYTES + addressLength;
  const fieldsEnd = fieldsStart + fieldsLength;
  if (fieldsEnd > n) return fail('truncated');

  const message: Record<string, unknown> = { kind, requestId, flags };
  if (family !== 0) {
    message.endpoint = { address: formatAddress(family, bytes.subarray(HEADER_BYTES, fieldsStart)), port };
  }
  let seen = 0;
  for (let pos = fieldsStart; pos < fieldsEnd; ) {
    if (pos + TLV_HEADER_BYTES > fieldsEnd) return fail('truncated');
    const tag = bytes[pos]!;
    const length = view.getUint16(pos + 1);
    const at = pos + TLV_HEADER_BYTES;
    pos = at + length;
    if (pos > fieldsEnd) return fail('truncated');
    const name = FIELD_BY_TAG[tag];
    if (name === undefined) continue;
    const bit = 1 << tag;
    if (seen & bit) return fail('duplicate-field');
    seen |= bit;
    const value = decodeField(name, bytes.subarray(at, pos), view, at);
    if (value === undefined) return fail('bad-field');
    message[name] = name === 'body' ? (value as { json: unknown }).json : value;
  }
  return { ok: true, message: message as unknown as ProbeMessage };
}

/**
 * The messages of a NOTIFY_BATCH's `data`, back to back, each as long as its own `length` field
 * says; `undefined` for a piece whose length runs past the end or is shorter than a header (the
 * rest of the batch is then unreadable). Never throws.
 */
export function* splitBatch(data: Uint8Array): Generator<Uint8Array | undefined> {
  let pos = 0;
  while (pos < data.length) {
    if (pos + 2 > data.length) {
      yield undefined;
      return;
    }
    const length = (data[pos]! << 8) | data[pos + 1]!;
    if (length < HEADER_BYTES || pos + length > data.length) {
      yield undefined;
      return;
    }
    yield data.subarray(pos, pos + length);
    pos += length;
  }
}
