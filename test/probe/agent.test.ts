/**
 * The agent role: a server that knows nothing of the probe protocol (socat, a real non-Node
 * process) is placed by the assigner through an agent that owns its public port.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/node.js';
import type { ProbeClient } from '../../src/client/probe.js';
import { validateConfig } from '../../src/config/load.js';
import { ProbeAgent } from '../../src/probe/agent.js';
import { Usher } from '../../src/runtime.js';
import { createLogger } from '../../src/util/logger.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const skip = needsCommands('agent with a socat upstream', 'socat');

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(r));
  return port;
}

/** Waits for the first datagram a client receives that satisfies `match`. */
function nextMessage(client: ProbeClient, match: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching message within 5 s')), 5000);
    const on = (data: Uint8Array) => {
      const text = new TextDecoder().decode(data);
      if (!match(text)) return;
      clearTimeout(timer);
      client.off('message', on);
      resolve(text);
    };
    client.on('message', on);
  });
}

describe('probe agent', { skip }, () => {
  let socat: ChildProcess | undefined;
  let upstreamPort = 0;
  let usher: Usher | undefined;
  const clients: ProbeClient[] = [];

  before(async () => {
    upstreamPort = await freeUdpPort();
    // Answers every datagram with the port it came from and the line it carried.
    socat = spawn(
      'socat',
      [
        `UDP4-RECVFROM:${upstreamPort},bind=127.0.0.1,fork,reuseaddr`,
        'SYSTEM:read l; echo "$SOCAT_PEERPORT $l"',
      ],
      { stdio: 'ignore' },
    );
    const config = validateConfig({
      pools: { game: { health: { kind: 'udp', app: 'game', intervalMs: 200 } } },
      assigner: { port: 0, mode: 'forward', apps: { game: { pool: 'game' } } },
      agents: [
        {
          id: 'agent-1',
          pool: 'game',
          app: 'game',
          host: '127.0.0.1',
          port: 0,
          upstream: `127.0.0.1:${upstreamPort}`,
        },
      ],
    });
    usher = await Usher.start(config, { logger });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await usher?.close();
    socat?.kill('SIGKILL');
  });

  it('places clients on the agent, carries their datagrams to the server and back, one upstream peer per client', async () => {
    const balancer = `127.0.0.1:${usher!.assigner!.address!.port}`;
    await eventually(async () => {
      const view = await usher!.registry.get('agent-1');
      assert.equal(view?.health, 'up', 'the UDP health check reaches the agent');
    });
    const a = await connect({ balancer, app: 'game', heartbeatMs: 500 });
    clients.push(a);
    const b = await connect({ balancer, app: 'game', heartbeatMs: 500 });
    clients.push(b);
    assert.equal(a.assignment.member, 'agent-1');
    assert.equal(b.assignment.member, 'agent-1');

    // The first datagram may race the upstream socket's bind: retry until one comes back.
    const echo = async (client: ProbeClient, text: string) => {
      const got = nextMessage(client, (t) => t.endsWith(` ${text}\n`));
      const timer = setInterval(() => client.send(`${text}\n`), 200);
      client.send(`${text}\n`);
      try {
        return await got;
      } finally {
        clearInterval(timer);
      }
    };
    const fromA = await echo(a, 'hello-from-a');
    const fromB = await echo(b, 'hello-from-b');
    const portA = fromA.split(' ')[0];
    const portB = fromB.split(' ')[0];
    assert.notEqual(portA, portB, 'the server sees each client as its own peer');

    const agents = usher!.roles().agents as Record<string, { carried: { up: number; down: number } }>;
    assert.ok(agents['agent-1']!.carried.up >= 2 && agents['agent-1']!.carried.down >= 2);
  });

  it('refuses an upstream that is not an IP address, naming the option', () => {
    assert.throws(
      () => new ProbeAgent({ id: 'x', app: 'game', upstream: { address: 'localhost', port: 1 } }),
      /upstream\.address: expected an IPv4 or IPv6 address, got "localhost"/,
    );
    assert.throws(
      () =>
        validateConfig({
          pools: { game: {} },
          agents: [{ id: 'x', pool: 'game', app: 'game', port: 0, upstream: 'localhost:7777' }],
        }),
      /agents\[0\]\.upstream: expected an IP address \(not a host name\) and port, got "localhost:7777"/,
    );
    assert.throws(
      () =>
        validateConfig({
          pools: { game: { members: [{ id: 'x', port: 7000 }] } },
          agents: [{ id: 'x', pool: 'game', app: 'game', port: 0, upstream: '127.0.0.1:7777' }],
        }),
      /agents\[0\]\.id: duplicate member id "x"/,
    );
  });
});
