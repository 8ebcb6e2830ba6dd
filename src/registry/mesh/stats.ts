/**
 * Counters of the mesh's network activity; `dropped` is keyed by reason.
 */

/** Why an incoming frame or connection was refused. */
export type DropReason =
  | 'malformed'
  | 'too-large'
  | 'unknown-type'
  | 'auth'
  | 'version'
  | 'handshake'
  | 'unexpected'
  | 'self'
  | 'slow-peer';

export interface MeshStats {
  /** Frames received and accepted. */
  readonly framesIn: number;
  readonly framesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Peer connections currently established (handshake done). */
  readonly connections: number;
  /** Connections opened so far (inbound and outbound, before the handshake). */
  readonly connectionsOpened: number;
  /** Handshakes refused for a wrong or missing authentication answer. */
  readonly authFailures: number;
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
}

export class StatsCounter {
  framesIn = 0;
  framesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  connections = 0;
  connectionsOpened = 0;
  authFailures = 0;
  readonly dropped = new Map<DropReason, number>();

  drop(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  snapshot(): MeshStats {
    return {
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      connections: this.connections,
      connectionsOpened: this.connectionsOpened,
      authFailures: this.authFailures,
      dropped: Object.fromEntries(this.dropped),
    };
  }
}
