import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { afterEach, describe, it } from 'node:test';
import { udpProbeCheck } from '../../src/health/checks.js';
import { decode, encode } from '../../src/probe/codec.js';
import { ErrorCode, type ProbeMessage } from '../../src/probe/messages.js';

const HOST = '127.0.0.1';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

/**
 * A fake member probe responder: `answer` turns each decoded request into the reply to send
 * (or undefined for none). Records what it received.
 */
async function responder(
  answer: (request: ProbeMessage) => ProbeMessage | undefined,
): Promise<{ port: number; received: ProbeMessage[] }> {
  const socket = dgram.createSocket('udp4');
  const received: ProbeMessage[] = [];
  socket.on('message', (bytes, from) => {
    const d = decode(bytes);
    if (!d.ok) return;
    received.push(d.message);
    const reply = answer(d.message);
    if (reply) socket.send(encode(reply), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
  closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, received };
}

describe('udpProbeCheck', () => {
  it('passes when the member answers PROBE_RESPONSE with the same requestId', async () => {
    const member = await responder((req) => ({
      kind: 'PROBE_RESPONSE',
      requestId: req.requestId,
      endpoint: { address: HOST, port: 1 },
      app: req.app,
      member: 'm1',
    }));
    const result = await udpProbeCheck({ host: HOST, port: member.port, app: 'game', timeoutMs: 5000 });
    assert.equal(result.ok, true, result.reason);
    assert.match(result.reason, /answered by m1/);
    assert.equal(member.received.length, 1);
    assert.equal(member.received[0]?.kind, 'PROBE');
    assert.equal(member.received[0]?.app, 'game');
  });

  it('passes on an ERROR answer too: the responder is alive', async () => {
    const member = await responder((req) => ({
      kind: 'ERROR',
      requestId: req.requestId,
      error: { code: ErrorCode.UNKNOWN_APP, message: 'unknown app' },
    }));
    const result = await udpProbeCheck({ host: HOST, port: member.port, app: 'other', timeoutMs: 5000 });
    assert.equal(result.ok, true, result.reason);
    assert.match(result.reason, /error 1/);
  });

  it('fails on timeout when nothing answers, or only answers to another request', async () => {
    const silent = await responder(() => undefined);
    const r1 = await udpProbeCheck({ host: HOST, port: silent.port, app: 'game', timeoutMs: 150 });
    assert.equal(r1.ok, false);
    assert.match(r1.reason, /timeout after 150 ms/);
    assert.equal(silent.received.length, 1, 'the probe reached the member');

    const wrong = await responder((req) => ({
      kind: 'PROBE_RESPONSE',
      requestId: (req.requestId + 1) >>> 0,
      endpoint: { address: HOST, port: 1 },
    }));
    const r2 = await udpProbeCheck({ host: HOST, port: wrong.port, app: 'game', timeoutMs: 150 });
    assert.equal(r2.ok, false);
    assert.match(r2.reason, /timeout/);
  });

  it('fails without throwing on a closed port, a bad host or an abort', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
    const closedPort = socket.address().port;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    const closed = await udpProbeCheck({ host: HOST, port: closedPort, app: 'game', timeoutMs: 2000 });
    assert.equal(closed.ok, false);

    const bad = await udpProbeCheck({ host: 'no-such-host.invalid', port: 9, app: 'game', timeoutMs: 2000 });
    assert.equal(bad.ok, false);

    const silent = await responder(() => undefined);
    const abort = new AbortController();
    const run = udpProbeCheck({
      host: HOST,
      port: silent.port,
      app: 'game',
      timeoutMs: 60_000,
      signal: abort.signal,
    });
    abort.abort();
    const aborted = await run;
    assert.equal(aborted.ok, false);
    assert.match(aborted.reason, /aborted/);
  });
});
