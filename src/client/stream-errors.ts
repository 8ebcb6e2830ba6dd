/**
 * Errors of the stream client (seed 003, L3.5/L3.6), each with a stable `code`. They are emitted
 * as `error` events (the client keeps trying), never thrown from network input.
 * (They belong in src/errors.ts with the others; kept here until that module takes them.)
 */
import { UsherError } from '../errors.js';

/** A list URL could not be fetched, or did not return a valid list document. */
export class StreamListError extends UsherError {
  readonly url: string;
  constructor(url: string, problem: string, options?: { cause?: unknown }) {
    super('USHER_ERR_STREAM_LIST', `list ${url}: ${problem}`, options);
    this.url = url;
  }
}

/** A stream server could not be reached, or did not say welcome in time. */
export class StreamConnectError extends UsherError {
  readonly url: string;
  constructor(url: string, problem: string) {
    super('USHER_ERR_STREAM_CONNECT', `stream ${url}: ${problem}`);
    this.url = url;
  }
}

/** The stream server refused a frame (an `error` frame: too many subscriptions, forbidden topic, ...). */
export class StreamRefusedError extends UsherError {
  /** The server's error code (`too-many-subscriptions`, `forbidden-topic`, `malformed`, `too-large`). */
  readonly reason: string;
  readonly server: string;
  readonly topic: string | undefined;
  constructor(server: string, reason: string, message: string, topic?: string) {
    super(
      'USHER_ERR_STREAM_REFUSED',
      `stream server ${server} refused${topic === undefined ? '' : ` topic ${topic}`}: ${reason} (${message})`,
    );
    this.reason = reason;
    this.server = server;
    this.topic = topic;
  }
}
