/**
 * The Usher stream protocol (seed 003, L3.5/L3.6): one persistent WebSocket per client to the
 * server it chose from the list, carrying JSON text frames (docs/protocols/stream.md).
 *
 *   client → server   {op:'subscribe', topic, since?}  {op:'unsubscribe', topic}  {op:'ping', id}
 *   server → client   {type:'welcome', server, heartbeatMs, version?}  {type:'subscribed', topic, seq}
 *                     {type:'data', topic, seq, data}  {type:'heartbeat', t}  {type:'pong', id}
 *                     {type:'goaway', reason}  {type:'error', code, message, topic?}
 *
 * Shared by both ends and browser-safe (no Node import). The parsers never throw: anything that
 * is not a well-formed frame (bad JSON, a wrong type, a missing field) reads as `undefined`.
 * Unknown extra fields are ignored, so a later revision may add optional ones.
 */

/** The protocol revision this code speaks; sent in `welcome`. */
export const STREAM_PROTOCOL_VERSION = 1;

/** Where a StreamServer listens for WebSocket upgrades unless told otherwise. */
export const DEFAULT_STREAM_PATH = '/usher/stream';

/** Longest topic name, in UTF-16 code units. */
export const MAX_TOPIC_LENGTH = 128;

/** Longest ping id string. */
export const MAX_PING_ID_LENGTH = 64;

/** Why the server refused a frame (the `code` of an `error` frame). */
export const STREAM_ERROR_CODES = [
  'malformed',
  'too-large',
  'too-many-subscriptions',
  'forbidden-topic',
] as const;
export type StreamErrorCode = (typeof STREAM_ERROR_CODES)[number];

export interface SubscribeFrame {
  readonly op: 'subscribe';
  readonly topic: string;
  /** Replay what the server still holds after this seq (the last one the client received). */
  readonly since?: number;
}
export interface UnsubscribeFrame {
  readonly op: 'unsubscribe';
  readonly topic: string;
}
export interface PingFrame {
  readonly op: 'ping';
  readonly id: string | number;
}
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame;

export interface WelcomeFrame {
  readonly type: 'welcome';
  /** The server's id, as in the list document. */
  readonly server: string;
  /** The server sends a frame at least this often; silence for several periods means it is gone. */
  readonly heartbeatMs: number;
  readonly version?: number;
}
export interface SubscribedFrame {
  readonly type: 'subscribed';
  readonly topic: string;
  /** The latest seq the server has for the topic (0 when none yet). */
  readonly seq: number;
}
export interface DataFrame {
  readonly type: 'data';
  readonly topic: string;
  /** Increases strictly within a topic. */
  readonly seq: number;
  readonly data: unknown;
}
export interface HeartbeatFrame {
  readonly type: 'heartbeat';
  /** The server's clock, ms since the epoch. */
  readonly t: number;
}
export interface PongFrame {
  readonly type: 'pong';
  readonly id: string | number;
}
export interface GoawayFrame {
  readonly type: 'goaway';
  /** Why (e.g. `draining`): the client should move to another server. */
  readonly reason: string;
}
export interface ErrorFrame {
  readonly type: 'error';
  /** One of STREAM_ERROR_CODES (a later revision may add others). */
  readonly code: string;
  readonly message: string;
  /** The topic concerned, when the refused frame named one. */
  readonly topic?: string;
}
export type ServerFrame =
  | WelcomeFrame
  | SubscribedFrame
  | DataFrame
  | HeartbeatFrame
  | PongFrame
  | GoawayFrame
  | ErrorFrame;

// ---------------------------------------------------------------------------------------------

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A topic: 1..MAX_TOPIC_LENGTH characters, none of them a control character. */
export function isTopic(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TOPIC_LENGTH) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** A sequence number: a safe integer >= 0. */
export function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPingId(value: unknown): value is string | number {
  if (typeof value === 'string') return value.length <= MAX_PING_ID_LENGTH;
  return typeof value === 'number' && Number.isFinite(value);
}

function isShortString(value: unknown, max = 1024): value is string {
  return typeof value === 'string' && value.length <= max;
}

/** Parses JSON text; `undefined` for anything that is not a string of valid JSON. */
function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Checks a decoded client frame; returns a clean copy (known fields only) or undefined. */
export function validateClientFrame(value: unknown): ClientFrame | undefined {
  if (!isObject(value)) return undefined;
  switch (value.op) {
    case 'subscribe': {
      if (!isTopic(value.topic)) return undefined;
      if (value.since === undefined) return { op: 'subscribe', topic: value.topic };
      return isSeq(value.since) ? { op: 'subscribe', topic: value.topic, since: value.since } : undefined;
    }
    case 'unsubscribe':
      return isTopic(value.topic) ? { op: 'unsubscribe', topic: value.topic } : undefined;
    case 'ping':
      return isPingId(value.id) ? { op: 'ping', id: value.id } : undefined;
    default:
      return undefined;
  }
}

/** Checks a decoded server frame; returns a clean copy (known fields only) or undefined. */
export function validateServerFrame(value: unknown): ServerFrame | undefined {
  if (!isObject(value)) return undefined;
  switch (value.type) {
    case 'welcome': {
      const { server, heartbeatMs, version } = value;
      if (!isShortString(server, 256) || server === '') return undefined;
      if (typeof heartbeatMs !== 'number' || !Number.isFinite(heartbeatMs) || heartbeatMs <= 0)
        return undefined;
      if (version === undefined) return { type: 'welcome', server, heartbeatMs };
      return isSeq(version) ? { type: 'welcome', server, heartbeatMs, version } : undefined;
    }
    case 'subscribed':
      return isTopic(value.topic) && isSeq(value.seq)
        ? { type: 'subscribed', topic: value.topic, seq: value.seq }
        : undefined;
    case 'data':
      return isTopic(value.topic) && isSeq(value.seq) && 'data' in value
        ? { type: 'data', topic: value.topic, seq: value.seq, data: value.data }
        : undefined;
    case 'heartbeat':
      return typeof value.t === 'number' && Number.isFinite(value.t)
        ? { type: 'heartbeat', t: value.t }
        : undefined;
    case 'pong':
      return isPingId(value.id) ? { type: 'pong', id: value.id } : undefined;
    case 'goaway':
      return isShortString(value.reason) ? { type: 'goaway', reason: value.reason } : undefined;
    case 'error': {
      const { code, message, topic } = value;
      if (!isShortString(code, 64) || code === '' || !isShortString(message)) return undefined;
      if (topic === undefined) return { type: 'error', code, message };
      return isTopic(topic) ? { type: 'error', code, message, topic } : undefined;
    }
    default:
      return undefined;
  }
}

/** Parses one text frame from a client; undefined when it is not a valid client frame. Never throws. */
export function parseClientFrame(text: unknown): ClientFrame | undefined {
  return validateClientFrame(parseJson(text));
}

/** Parses one text frame from a server; undefined when it is not a valid server frame. Never throws. */
export function parseServerFrame(text: unknown): ServerFrame | undefined {
  return validateServerFrame(parseJson(text));
}

/** Encodes a frame as the JSON text sent on the wire. */
export function encodeFrame(frame: ClientFrame | ServerFrame): string {
  return JSON.stringify(frame);
}
