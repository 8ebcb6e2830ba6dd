/**
 * The Usher client SDK for Node (`usher/client` under the `node` condition): everything the
 * isomorphic entry offers, plus the probe client over a real UDP socket (node:dgram).
 *
 *   const client = await connect({ balancer: 'play.example.net:7000', app: 'game' });
 *   client.on('message', (data) => ...);
 *   client.send(JSON.stringify({ x: 1, y: 2 }));   // straight to the assigned member
 */
import { createSocket, type Socket } from 'node:dgram';
import { WebSocket as NodeWebSocket } from 'ws';
import { parseAddress } from '../probe/address.js';
import type { Endpoint } from '../probe/messages.js';
import { type DatagramTransport, ProbeClient, type ProbeClientOptions, parseEndpoint } from './probe.js';
import { type StreamClient, type StreamClientOptions, connectStream as startStream } from './stream.js';

export { ProbeRejectedError, ProbeStateError, ProbeTimeoutError, UsherError } from '../errors.js';
export * from './index.js';
export {
  type BackoffOptions,
  backoffDelay,
  connectWith,
  type DatagramTransport,
  Emitter,
  type Endpoint,
  formatEndpoint,
  type LostReason,
  type ProbeAssignment,
  ProbeClient,
  type ProbeClientEvents,
  type ProbeClientOptions,
  type ProbeClientState,
  type ProbeClientStats,
  parseEndpoint,
} from './probe.js';

export interface UdpTransportOptions {
  /** `udp4` (default) or `udp6` (dual-stack: reaches IPv4 peers too). */
  readonly type?: 'udp4' | 'udp6';
  /** Local address to bind (default: every interface). */
  readonly host?: string;
  /** Local port to bind (default 0: any free port). */
  readonly port?: number;
}

/** A DatagramTransport over one bound node:dgram socket. */
export interface UdpTransport extends DatagramTransport {
  /** The local address the socket is bound to. */
  readonly local: Endpoint;
  close(): Promise<void>;
}

/** Opens a UDP socket for a probe client. */
export async function createUdpTransport(options: UdpTransportOptions = {}): Promise<UdpTransport> {
  const type = options.type ?? 'udp4';
  const socket: Socket = createSocket({ type });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port ?? 0, options.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const info = socket.address();
  const messageListeners: Array<(bytes: Uint8Array, from: Endpoint) => void> = [];
  const errorListeners: Array<(error: Error) => void> = [];
  const fail = (error: Error) => {
    for (const l of errorListeners) l(error);
  };
  socket.on('message', (data, rinfo) => {
    const from = { address: rinfo.address, port: rinfo.port };
    for (const l of messageListeners) l(data, from);
  });
  socket.on('error', fail);
  let pending = 0;
  let flushed: (() => void) | undefined;
  let closed: Promise<void> | undefined;
  return {
    local: { address: info.address, port: info.port },
    send(bytes, to) {
      if (closed) return;
      // A udp6 socket reaches IPv4 peers through their IPv4-mapped address.
      const address =
        type === 'udp6' && parseAddress(to.address)?.family === 4 ? `::ffff:${to.address}` : to.address;
      pending += 1;
      try {
        socket.send(bytes, to.port, address, (error) => {
          pending -= 1;
          if (error) fail(error);
          if (pending === 0) flushed?.();
        });
      } catch (error) {
        pending -= 1;
        fail(error as Error);
      }
    },
    onMessage(listener) {
      messageListeners.push(listener);
    },
    onError(listener) {
      errorListeners.push(listener);
    },
    close() {
      closed ??= (async () => {
        // Let what was already sent (a BYE) leave before the socket goes.
        if (pending > 0)
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            flushed = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        await new Promise<void>((resolve) => socket.close(() => resolve()));
      })();
      return closed;
    },
  };
}

export interface ConnectOptions extends Omit<ProbeClientOptions, 'transport'> {
  /** The datagram channel; default a new UDP socket (udp6 when the balancer is an IPv6 address). */
  readonly transport?: DatagramTransport;
}

async function transportFor(options: { balancer: Endpoint | string; transport?: DatagramTransport }) {
  if (options.transport) return options.transport;
  const balancer = parseEndpoint(options.balancer);
  return createUdpTransport({ type: parseAddress(balancer.address)?.family === 6 ? 'udp6' : 'udp4' });
}

/**
 * Probes the balancer and resolves with a ProbeClient once it is assigned (P0.2–P0.5).
 * Rejects with ProbeTimeoutError (`USHER_ERR_PROBE_TIMEOUT`) when no attempt is answered, or
 * ProbeRejectedError (`USHER_ERR_PROBE_REJECTED`) when the balancer refuses.
 */
export async function connect(options: ConnectOptions): Promise<ProbeClient> {
  parseEndpoint(options.balancer); // fail on a bad address before opening a socket
  const transport = await transportFor(options);
  return ProbeClient.connect({ ...options, transport });
}

export interface CatalogOptions {
  readonly balancer: Endpoint | string;
  readonly probeTimeoutMs?: number;
  readonly probeAttempts?: number;
  readonly backoff?: ProbeClientOptions['backoff'];
  readonly transport?: DatagramTransport;
}

/** Asks the balancer for its catalog (P0.6) without joining anything. */
export async function catalog(options: CatalogOptions): Promise<unknown> {
  parseEndpoint(options.balancer);
  const transport = await transportFor(options);
  const client = new ProbeClient({ ...options, app: '-', transport });
  try {
    return await client.catalog();
  } finally {
    await client.close();
  }
}

/**
 * Connects to the stream (seed 003, L3.5/L3.6) from Node: as the isomorphic `connectStream`,
 * with `WebSocket` defaulting to the `ws` package's (Node 20 has no global WebSocket).
 *
 *   const client = connectStream({ listUrls: ['http://127.0.0.1:8080/usher/list/live'] });
 *   client.subscribe('ticker.USHR', (tick) => console.log(tick));
 */
export function connectStream(options: StreamClientOptions): StreamClient {
  return startStream({ ...options, WebSocket: options.WebSocket ?? NodeWebSocket });
}
