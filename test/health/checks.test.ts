import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { httpCheck, tcpCheck } from '../../src/health/checks.js';

const HOST = '127.0.0.1';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        if (server instanceof http.Server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A TCP server that tracks its sockets so the test can destroy them. */
async function tcpServer(): Promise<{ port: number; server: net.Server }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  const port = await listen(server);
  // Runs before the server's close (closers run last-in first-out), which waits for sockets.
  closers.push(async () => {
    for (const s of sockets) s.destroy();
  });
  return { port, server };
}

async function httpServer(handler: http.RequestListener): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer(handler);
  return { port: await listen(server), server };
}

/** A port with nothing listening on it (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls the server's open connection count until it is 0, with a deadline. */
async function noConnectionsLeft(server: net.Server, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = await new Promise<number>((resolve, reject) =>
      server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
    );
    if (n === 0) return;
    if (Date.now() > deadline) assert.fail(`${n} connection(s) still open after the check`);
    await delay(10);
  }
}

describe('tcpCheck', () => {
  it('passes when the port accepts, and closes its connection', async () => {
    const { port, server } = await tcpServer();
    const r = await tcpCheck({ host: HOST, port, timeoutMs: 2_000 });
    assert.equal(r.ok, true, r.reason);
    assert.equal(r.reason, 'tcp connect ok');
    assert.ok(r.latencyMs >= 0);
    await noConnectionsLeft(server);
  });

  it('fails with the error code when the port refuses', async () => {
    const r = await tcpCheck({ host: HOST, port: await closedPort(), timeoutMs: 2_000 });
    assert.equal(r.ok, false);
    assert.equal(r.reason, 'tcp connect ECONNREFUSED');
  });

  it('fails, without throwing, for an invalid target or an aborted check', async () => {
    const bad = await tcpCheck({ host: HOST, port: 70_000, timeoutMs: 2_000 });
    assert.equal(bad.ok, false);
    assert.match(bad.reason, /^tcp connect /);
    const aborted = await tcpCheck({ host: HOST, port: 1, timeoutMs: 2_000, signal: AbortSignal.abort() });
    assert.deepEqual([aborted.ok, aborted.reason], [false, 'tcp check aborted']);
  });
});

describe('httpCheck', () => {
  it('passes on a status in range, checks the body, and leaves no connection open', async () => {
    const paths: string[] = [];
    const { port, server } = await httpServer((req, res) => {
      paths.push(req.url ?? '');
      res.end('service ok');
    });
    const r = await httpCheck({ host: HOST, port, path: '/healthz', timeoutMs: 2_000 });
    assert.equal(r.ok, true, r.reason);
    assert.equal(r.reason, 'http status 200');
    const body = await httpCheck({ host: HOST, port, timeoutMs: 2_000, bodyContains: 'ok' });
    assert.equal(body.ok, true, body.reason);
    const wrongBody = await httpCheck({ host: HOST, port, timeoutMs: 2_000, bodyContains: 'ready' });
    assert.equal(wrongBody.ok, false);
    assert.equal(wrongBody.reason, 'http status 200, body does not contain "ready"');
    assert.deepEqual(paths, ['/healthz', '/', '/']);
    await noConnectionsLeft(server);
  });

  it('fails on a status outside the expected range', async () => {
    const { port } = await httpServer((_req, res) => {
      res.statusCode = 503;
      res.end('overloaded');
    });
    const r = await httpCheck({ host: HOST, port, timeoutMs: 2_000 });
    assert.deepEqual([r.ok, r.reason], [false, 'http status 503 not in 200-399']);
    const custom = await httpCheck({ host: HOST, port, timeoutMs: 2_000, expectStatus: [500, 599] });
    assert.equal(custom.ok, true, custom.reason);
  });

  it('fails when the port refuses', async () => {
    const r = await httpCheck({ host: HOST, port: await closedPort(), timeoutMs: 2_000 });
    assert.deepEqual([r.ok, r.reason], [false, 'http ECONNREFUSED']);
  });

  it('fails with a timeout when the server accepts but never answers, and closes the connection', async () => {
    let requests = 0;
    const { port, server } = await httpServer(() => {
      requests += 1; // never respond
    });
    const r = await httpCheck({ host: HOST, port, timeoutMs: 200 });
    assert.deepEqual([r.ok, r.reason], [false, 'http timeout after 200 ms']);
    assert.equal(requests, 1);
    await noConnectionsLeft(server);
  });

  it('fails with a timeout when a TCP server accepts but never speaks HTTP', async () => {
    const { port } = await tcpServer();
    const r = await httpCheck({ host: HOST, port, timeoutMs: 200 });
    assert.deepEqual([r.ok, r.reason], [false, 'http timeout after 200 ms']);
  });

  it('fails, without throwing, on a malformed path or when aborted', async () => {
    const { port } = await httpServer((_req, res) => res.end());
    const bad = await httpCheck({ host: HOST, port, path: '/a b', timeoutMs: 2_000 });
    assert.equal(bad.ok, false);
    assert.match(bad.reason, /^http request /);
    const controller = new AbortController();
    const { port: silent } = await httpServer(() => {
      controller.abort();
    });
    const aborted = await httpCheck({
      host: HOST,
      port: silent,
      timeoutMs: 10_000,
      signal: controller.signal,
    });
    assert.deepEqual([aborted.ok, aborted.reason], [false, 'http check aborted']);
  });
});
