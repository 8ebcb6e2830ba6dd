/**
 * One WebSocket to one stream server, as the stream client sees it: `opened` settles when the
 * server says welcome (or fails to within the connect timeout), `ended` when the link is gone
 * for any reason — closed, errored, silent for longer than the heartbeat timeout, or told to go
 * away. Isomorphic: it speaks through any WebSocket constructor (the browser's, or `ws` in Node).
 * Frames that do not parse are counted and dropped; nothing from the network throws.
 */
import {
  type ClientFrame,
  encodeFrame,
  parseServerFrame,
  type ServerFrame,
  type WelcomeFrame,
} from '../list/stream-protocol.js';
import { StreamConnectError } from './stream-errors.js';

/** The part of a WebSocket the client uses (the browser's WebSocket and `ws`'s both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: unknown) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Why a link ended. */
export type StreamLostReason =
  | 'closed'
  | 'error'
  | 'heartbeat-timeout'
  | 'goaway'
  | 'connect-timeout'
  | 'client-closed';

export interface LinkEnd {
  readonly reason: StreamLostReason;
  /** Close code and reason, the goaway reason, or what failed. */
  readonly detail: string;
}

export interface LinkOptions {
  readonly url: string;
  readonly WebSocket: WebSocketConstructor;
  /** Connect and welcome must both happen within this time. */
  readonly connectTimeoutMs: number;
  /** No frame within this time means the server is gone (default: 3 × the welcome's heartbeatMs). */
  readonly heartbeatTimeoutMs?: number;
  /** Every valid frame after the welcome (goaway included). */
  readonly onFrame: (frame: ServerFrame) => void;
  /** A frame that was dropped, with why (`malformed`, `binary`, `unexpected-welcome`). */
  readonly onDrop: (reason: string) => void;
}

const OPEN = 1;

function field(event: unknown, name: string): unknown {
  return typeof event === 'object' && event !== null ? (event as Record<string, unknown>)[name] : undefined;
}

export class StreamLink {
  readonly url: string;
  /** Resolves with the server's welcome; rejects with StreamConnectError. */
  readonly opened: Promise<WelcomeFrame>;
  /** Resolves once, when the link is gone (also when it never opened). */
  readonly ended: Promise<LinkEnd>;
  readonly #ws: WebSocketLike;
  readonly #options: LinkOptions;
  #welcome: WelcomeFrame | undefined;
  #end: LinkEnd | undefined;
  #resolveOpened!: (welcome: WelcomeFrame) => void;
  #rejectOpened!: (error: Error) => void;
  #resolveEnded!: (end: LinkEnd) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timeoutMs = 0;
  #lastSeen = 0;
  #after = 0;

  /** Opens the socket; throws what the WebSocket constructor throws (e.g. a malformed URL). */
  constructor(options: LinkOptions) {
    this.url = options.url;
    this.#options = options;
    this.opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.opened.catch(() => {}); // the owner awaits it; never an unhandled rejection
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
    this.#ws = new options.WebSocket(options.url);
    this.#ws.addEventListener('message', (event) => this.#message(field(event, 'data')));
    this.#ws.addEventListener('close', (event) => {
      const code = field(event, 'code');
      const reason = field(event, 'reason');
      this.#finish('closed', `closed (code ${String(code)}${reason ? `, ${String(reason)}` : ''})`);
    });
    this.#ws.addEventListener('error', (event) => {
      const message = field(event, 'message');
      this.#finish('error', typeof message === 'string' && message ? message : 'WebSocket error');
    });
    this.#timer = setTimeout(
      () => this.#finish('connect-timeout', `no welcome within ${options.connectTimeoutMs} ms`),
      options.connectTimeoutMs,
    );
  }

  /** The server's welcome, once it came. */
  get welcome(): WelcomeFrame | undefined {
    return this.#welcome;
  }

  /** The heartbeat timeout in force (known once welcomed). */
  get heartbeatTimeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Whether any frame came after the welcome (the server is really serving, not just accepting). */
  get healthy(): boolean {
    return this.#after > 0;
  }

  get isOpen(): boolean {
    return this.#welcome !== undefined && this.#end === undefined;
  }

  /** Sends a frame; false when the link is not open. */
  send(frame: ClientFrame): boolean {
    if (!this.isOpen || this.#ws.readyState !== OPEN) return false;
    try {
      this.#ws.send(encodeFrame(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Ends the link from this side. */
  close(): void {
    this.#finish('client-closed', 'closed by the client');
  }

  // -------------------------------------------------------------------------------------------

  #message(data: unknown): void {
    if (this.#end) return;
    this.#lastSeen = Date.now();
    const frame = typeof data === 'string' ? parseServerFrame(data) : undefined;
    if (!frame) this.#options.onDrop(typeof data === 'string' ? 'malformed' : 'binary');
    else if (frame.type !== 'welcome') {
      if (!this.#welcome) this.#options.onDrop('before-welcome');
      else {
        this.#after += 1;
        this.#options.onFrame(frame);
      }
      if (frame.type === 'goaway') this.#finish('goaway', frame.reason);
    } else if (this.#welcome) this.#options.onDrop('unexpected-welcome');
    else {
      this.#welcome = frame;
      clearTimeout(this.#timer);
      this.#timeoutMs = this.#options.heartbeatTimeoutMs ?? 3 * frame.heartbeatMs;
      this.#watch(this.#timeoutMs);
      this.#resolveOpened(frame);
    }
  }

  /** The heartbeat watchdog: one timer, re-armed for the time left since the last frame. */
  #watch(delay: number): void {
    this.#timer = setTimeout(() => {
      const silent = Date.now() - this.#lastSeen;
      if (silent >= this.#timeoutMs)
        this.#finish('heartbeat-timeout', `no frame for ${silent} ms (limit ${this.#timeoutMs} ms)`);
      else this.#watch(this.#timeoutMs - silent);
    }, delay);
  }

  #finish(reason: StreamLostReason, detail: string): void {
    if (this.#end) return;
    const end: LinkEnd = { reason, detail };
    this.#end = end;
    clearTimeout(this.#timer);
    if (!this.#welcome) this.#rejectOpened(new StreamConnectError(this.url, detail));
    this.#resolveEnded(end);
    if (reason === 'closed') return;
    // A socket that failed or went silent is cut off at once where the platform allows (`ws` in
    // Node); otherwise it is closed politely and ignored from now on.
    const ws = this.#ws as WebSocketLike & { terminate?: () => void };
    const polite = reason === 'client-closed' || reason === 'goaway';
    try {
      if (!polite && typeof ws.terminate === 'function') ws.terminate();
      else ws.close(1000);
    } catch {
      // a socket that cannot be closed is already gone
    }
  }
}
