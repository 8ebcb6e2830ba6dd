/**
 * Active health checks over real sockets: TCP connect, HTTP GET and a UDP probe (the probe
 * protocol's PROBE, docs/protocols/probe.md). Each resolves to a
 * `CheckResult` and never rejects: a refused connection, a timeout or a malformed answer is a
 * failed check with a reason, not an exception. Every socket is closed before the promise
 * resolves (no keep-alive: one connection per check).
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { decode, encode } from '../probe/codec.js';
import { PADDED_REQUEST_BYTES } from '../probe/messages.js';

export interface CheckResult {
  readonly ok: boolean;
  /** Why it passed or failed, e.g. `tcp connect ECONNREFUSED`, `http status 503 not in 200-399`. */
  readonly reason: string;
  /** Time from start to verdict. */
  readonly latencyMs: number;
}

export interface TcpCheckOptions {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** Aborting ends the check at once with a failed result. */
  readonly signal?: AbortSignal;
}

export interface HttpCheckOptions {
  readonly host: string;
  readonly port: number;
  /** Request path; `/` by default. */
  readonly path?: string;
  readonly timeoutMs: number;
  /** Inclusive status range that passes; `[200, 399]` by default. */
  readonly expectStatus?: readonly [number, number];
  /** When set, the body must contain this text (only the first `maxBodyBytes` are searched). */
  readonly bodyContains?: string;
  /** Bytes of body kept for `bodyContains`; 64 KiB by default. The rest is read and dropped. */
  readonly maxBodyBytes?: number;
  /** `Host` header; the target address by default. */
  readonly hostHeader?: string;
  readonly signal?: AbortSignal;
}

export interface UdpProbeCheckOptions {
  readonly host: string;
  readonly port: number;
  /** The app named in the PROBE. */
  readonly app: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.message === 'string') return e.message;
  return String(error);
}

/** Settles once; runs `cleanup` first. */
function once(start: number, cleanup: () => void, resolve: (r: CheckResult) => void) {
  let done = false;
  return (ok: boolean, reason: string): void => {
    if (done) return;
    done = true;
    cleanup();
    resolve({ ok, reason, latencyMs: performance.now() - start });
  };
}

/** Passes when a TCP connection to host:port is established within the timeout. */
export function tcpCheck(options: TcpCheckOptions): Promise<CheckResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    let socket: net.Socket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => finish(false, 'tcp check aborted');
    const finish = once(
      start,
      () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        socket?.destroy();
      },
      resolve,
    );
    if (options.signal?.aborted) return finish(false, 'tcp check aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(
      () => finish(false, `tcp connect timeout after ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    try {
      socket = net.connect({ host: options.host, port: options.port });
    } catch (error) {
      return finish(false, `tcp connect ${errorCode(error)}`);
    }
    socket.once('connect', () => finish(true, 'tcp connect ok'));
    socket.on('error', (error) => finish(false, `tcp connect ${errorCode(error)}`));
  });
}

/**
 * Passes when `GET path` answers with a status in `expectStatus` (and, if asked, a body
 * containing `bodyContains`) within the timeout, which covers connect, headers and body.
 */
export function httpCheck(options: HttpCheckOptions): Promise<CheckResult> {
  const start = performance.now();
  const [min, max] = options.expectStatus ?? [200, 399];
  const maxBody = options.maxBodyBytes ?? 65_536;
  return new Promise((resolve) => {
    let req: http.ClientRequest | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => finish(false, 'http check aborted');
    const finish = once(
      start,
      () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        req?.destroy();
      },
      resolve,
    );
    if (options.signal?.aborted) return finish(false, 'http check aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => finish(false, `http timeout after ${options.timeoutMs} ms`), options.timeoutMs);
    try {
      req = http.request({
        host: options.host,
        port: options.port,
        path: options.path ?? '/',
        method: 'GET',
        agent: false,
        headers: {
          connection: 'close',
          'user-agent': 'usher-health-check',
          ...(options.hostHeader ? { host: options.hostHeader } : {}),
        },
      });
    } catch (error) {
      return finish(false, `http request ${errorCode(error)}`);
    }
    req.on('error', (error) => finish(false, `http ${errorCode(error)}`));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status < min || status > max) {
        res.resume();
        return finish(false, `http status ${status} not in ${min}-${max}`);
      }
      if (options.bodyContains === undefined) {
        res.resume();
        res.on('end', () => finish(true, `http status ${status}`));
        res.on('error', (error) => finish(false, `http body ${errorCode(error)}`));
        return;
      }
      const needle = options.bodyContains;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept >= maxBody) return;
        chunks.push(chunk);
        kept += chunk.length;
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks).subarray(0, maxBody).toString('utf8');
        if (body.includes(needle)) finish(true, `http status ${status}, body matches`);
        else finish(false, `http status ${status}, body does not contain ${JSON.stringify(needle)}`);
      });
      res.on('error', (error) => finish(false, `http body ${errorCode(error)}`));
    });
    req.end();
  });
}

/**
 * Passes when a PROBE for `app` (padded to 256 bytes, so the answer fits) sent to host:port is
 * answered within the timeout by a PROBE_RESPONSE or an ERROR echoing its requestId: either
 * proves that the member's probe responder is alive (an ERROR such as "no such app" is still an
 * answer). The socket is connected, so only datagrams from host:port count, and a closed port
 * (ICMP port unreachable) fails at once where the OS reports it.
 */
export function udpProbeCheck(options: UdpProbeCheckOptions): Promise<CheckResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    let socket: dgram.Socket | undefined;
    let closed = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => finish(false, 'udp probe aborted');
    const finish = once(
      start,
      () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        closed = true;
        try {
          socket?.close();
        } catch {
          // already closed
        }
      },
      resolve,
    );
    if (options.signal?.aborted) return finish(false, 'udp probe aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(
      () => finish(false, `udp probe timeout after ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    const requestId = randomBytes(4).readUInt32BE(0);
    let request: Uint8Array;
    try {
      request = encode({ kind: 'PROBE', requestId, app: options.app, padTo: PADDED_REQUEST_BYTES });
    } catch (error) {
      return finish(false, `udp probe: ${(error as Error).message}`);
    }
    try {
      socket = dgram.createSocket(net.isIPv6(options.host) ? 'udp6' : 'udp4');
    } catch (error) {
      return finish(false, `udp probe ${errorCode(error)}`);
    }
    const s = socket;
    s.on('error', (error) => finish(false, `udp probe ${errorCode(error)}`));
    s.on('message', (bytes: Buffer) => {
      const result = decode(bytes);
      if (!result.ok || result.message.requestId !== requestId) return;
      const m = result.message;
      if (m.kind === 'PROBE_RESPONSE') finish(true, `udp probe answered${m.member ? ` by ${m.member}` : ''}`);
      else if (m.kind === 'ERROR')
        finish(
          true,
          `udp probe answered with error ${m.error?.code ?? '?'}${m.error?.message ? ` (${m.error.message})` : ''}`,
        );
    });
    try {
      // On a failed look-up Node calls back with the error (the typings say no arguments).
      s.connect(options.port, options.host, ((error?: Error) => {
        if (closed) return;
        if (error) return finish(false, `udp probe ${errorCode(error)}`);
        try {
          s.send(request, (e) => {
            if (e) finish(false, `udp probe send ${errorCode(e)}`);
          });
        } catch (e) {
          finish(false, `udp probe send ${errorCode(e)}`);
        }
      }) as () => void);
    } catch (error) {
      finish(false, `udp probe ${errorCode(error)}`);
    }
  });
}
