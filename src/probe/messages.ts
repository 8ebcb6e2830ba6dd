/**
 * The probe protocol's messages as values (docs/protocols/probe.md). Pure, isomorphic.
 * `src/probe/codec.ts` turns them into bytes and back.
 */

/** Bytes 2..3 of every probe-protocol datagram (the seed's marker). */
export const PROBE_TYPE = 0xffff;
export const PROBE_VERSION = 1;
export const HEADER_BYTES = 16;
/** Clients pad PROBE and CATALOG requests to this size so that answers fit (never an amplifier). */
export const PADDED_REQUEST_BYTES = 320;
/** Largest message the codec produces or accepts. */
export const MAX_MESSAGE_BYTES = 8192;

export const Kind = {
  PROBE: 1,
  PROBE_RESPONSE: 2,
  FORWARD: 3,
  NOTIFY: 4,
  HEARTBEAT: 5,
  HEARTBEAT_ACK: 6,
  CATALOG: 7,
  CATALOG_RESPONSE: 8,
  LOBBY: 9,
  LOBBY_RESPONSE: 10,
  RETRY: 11,
  ERROR: 12,
  BYE: 13,
  RELAY: 14,
  /** Several NOTIFY messages to one member in one datagram (the `data` field holds them back to back). */
  NOTIFY_BATCH: 15,
} as const;
export type KindName = keyof typeof Kind;
export type KindCode = (typeof Kind)[KindName];

export const Flag = { VALIDATED: 1, PADDED: 2 } as const;

export const Tag = {
  app: 1,
  incarnation: 2,
  cookie: 3,
  session: 4,
  member: 5,
  site: 6,
  error: 7,
  body: 8,
  seq: 9,
  requestSize: 10,
  user: 11,
  data: 12,
  mac: 13,
} as const;

export const ErrorCode = {
  UNKNOWN_APP: 1,
  NO_MEMBER: 2,
  UNKNOWN_SESSION: 3,
  RATE_LIMITED: 4,
} as const;

/** An IPv4 or IPv6 address (text form) with a port: the seed's address field. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Everything a message can carry. Which fields a kind uses is in the protocol doc. */
export interface ProbeFields {
  readonly app?: string;
  readonly incarnation?: string;
  /** 16 bytes. */
  readonly cookie?: Uint8Array;
  /** 16 bytes. */
  readonly session?: Uint8Array;
  readonly member?: string;
  readonly site?: string;
  readonly error?: { readonly code: number; readonly message: string };
  /** JSON value, encoded as UTF-8 JSON text. */
  readonly body?: unknown;
  readonly seq?: number;
  readonly requestSize?: number;
  readonly user?: string;
  /** Application bytes a member relays to its peers (RELAY), 1..MAX_MESSAGE_BYTES. */
  readonly data?: Uint8Array;
  /** 16 bytes: HMAC-SHA256 of a RELAY with the relay secret (src/probe/relay.ts). */
  readonly mac?: Uint8Array;
}

export interface ProbeMessage extends ProbeFields {
  readonly kind: KindName;
  readonly requestId: number;
  readonly flags?: number;
  /** The address field: the member's own (PROBE_RESPONSE) or the client's observed one (FORWARD, NOTIFY). */
  readonly endpoint?: Endpoint;
  /** Pad the encoded message with zeros to at least this many bytes. */
  readonly padTo?: number;
}

/** Why a datagram was refused; these are the `reason` labels of the drop metrics. */
export type DecodeError =
  | 'not-probe'
  | 'short'
  | 'length-mismatch'
  | 'bad-version'
  | 'bad-kind'
  | 'bad-family'
  | 'truncated'
  | 'bad-field'
  | 'duplicate-field'
  | 'too-large';

export type DecodeResult =
  | { readonly ok: true; readonly message: ProbeMessage }
  | { readonly ok: false; readonly error: DecodeError };
