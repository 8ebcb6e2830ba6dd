/**
 * The public types of the stream client (src/client/stream.ts): its options, states, events and
 * stats. Isomorphic.
 */
import type { WelcomeFrame } from '../list/stream-protocol.js';
import type { BackoffOptions } from '../probe/backoff.js';
import type { StreamLostReason, WebSocketConstructor } from './stream-link.js';
import type { FetchLike, StreamListDocument, StreamListServer } from './stream-list.js';

export const STREAM_POLICIES = ['priority-load', 'seed-formula', 'p2c', 'weighted-random'] as const;
export type StreamPolicyName = (typeof STREAM_POLICIES)[number];

export interface StreamClientOptions {
  /** Where the list document is served; tried round-robin, starting at a random one. Used as given. */
  readonly listUrls: readonly string[];
  /** When set, a list document for another pool is refused. */
  readonly pool?: string;
  /**
   * How to choose (default `priority-load`: the seed's formula on users per unit of capacity,
   * shares scaled by capacity and sharpened, `normalizeByWeight` + `sharpen`; `seed-formula`: the
   * formula exactly as the seed writes it, on raw user counts; `p2c`: two random servers, the one
   * with fewer users per capacity; `weighted-random`: by capacity). Always UP servers of the best
   * priority group first.
   */
  readonly policy?: StreamPolicyName;
  /** On a lost connection, fetch a fresh list at once instead of first retrying the same server (default false). */
  readonly refetchAtOnce?: boolean;
  /** Full-jitter backoff between failed rounds (default base 250 ms, max 10000 ms). */
  readonly backoff?: BackoffOptions;
  /** Timeout of one list fetch (default 3000 ms). */
  readonly fetchTimeoutMs?: number;
  /** Timeout to connect and be welcomed (default 3000 ms). */
  readonly connectTimeoutMs?: number;
  /** No frame within this time means the server is gone (default 3 × the server's heartbeatMs). */
  readonly heartbeatTimeoutMs?: number;
  /** WebSocket constructor (default `globalThis.WebSocket`). */
  readonly WebSocket?: WebSocketConstructor;
  /** fetch (default `globalThis.fetch`). */
  readonly fetch?: FetchLike;
  /** Uniform random numbers in [0, 1) for the choice, the first list URL and the backoff (default Math.random). */
  readonly random?: () => number;
}

export type StreamClientState = 'idle' | 'fetching' | 'connecting' | 'open' | 'retrying' | 'closed';
export type StreamHandler = (data: unknown, seq: number, topic: string) => void;

export interface StreamLost {
  readonly server: StreamListServer;
  readonly reason: StreamLostReason;
  readonly detail: string;
}
export interface StreamRefetch {
  /** Servers left out of the next choice (they just failed), when any other is eligible. */
  readonly excluded: readonly string[];
}
export interface StreamReconnected {
  readonly server: StreamListServer;
  readonly previous: StreamListServer;
  /** From `lost` to the new server's welcome. */
  readonly downtimeMs: number;
}
export interface StreamGap {
  readonly topic: string;
  /** First seq missed. */
  readonly fromSeq: number;
  /** Last seq missed. */
  readonly toSeq: number;
}

export interface StreamClientEvents {
  state: [state: StreamClientState];
  list: [document: StreamListDocument];
  chosen: [server: StreamListServer];
  open: [server: StreamListServer, welcome: WelcomeFrame];
  lost: [lost: StreamLost];
  'retry-same': [server: StreamListServer];
  refetch: [refetch: StreamRefetch];
  reconnected: [reconnected: StreamReconnected];
  data: [topic: string, data: unknown, seq: number];
  gap: [gap: StreamGap];
  error: [error: Error];
}

export interface StreamClientStats {
  /** Connections opened after a loss. */
  readonly reconnects: number;
  readonly listFetches: number;
  readonly listFailures: number;
  readonly connectFailures: number;
  readonly lastDowntimeMs: number | undefined;
  /** Id of the server connected to now. */
  readonly server: string | undefined;
  readonly received: number;
  readonly gaps: number;
  /** Frames dropped, by reason (`malformed`, `duplicate`, `unsubscribed`, ...). */
  readonly dropped: Readonly<Record<string, number>>;
}
