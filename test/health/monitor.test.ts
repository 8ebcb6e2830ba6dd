import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { emptyLoad, type HealthState, type Member, makeMember } from '../../src/core/model.js';
import {
  HealthMonitor,
  type HealthMonitorOptions,
  type MonitorTransition,
} from '../../src/health/monitor.js';
import { type PoolHealthConfig, resolvePoolHealth } from '../../src/health/pool-config.js';
import { MemoryRegistry } from '../../src/registry/memory.js';

const HOST = '127.0.0.1';
const WAIT_MS = 5_000;

/** Polls `condition` until it holds, failing with `what` at the deadline. */
async function until(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A TCP or HTTP server that can be stopped and started again on the same port. */
class MemberServer {
  port = 0;
  status = 200;
  readonly paths: string[] = [];
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();

  constructor(readonly kind: 'tcp' | 'http') {}

  async start(): Promise<void> {
    const server =
      this.kind === 'http'
        ? http.createServer((req, res) => {
            this.paths.push(req.url ?? '');
            res.statusCode = this.status;
            res.end('ok');
          })
        : net.createServer((s) => s.resume());
    server.on('connection', (s: net.Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, HOST, () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('HealthMonitor', () => {
  let registry: MemoryRegistry;
  let monitor: HealthMonitor | undefined;
  let servers: MemberServer[];
  let timers: ReturnType<typeof setInterval>[];
  let errors: unknown[];
  /** Every health event the registry emitted, in order. */
  let health: { id: string; health: HealthState; previous: HealthState; reason: string }[];
  let transitions: MonitorTransition[];

  beforeEach(() => {
    registry = new MemoryRegistry();
    servers = [];
    timers = [];
    errors = [];
    health = [];
    transitions = [];
    registry.watch((e) => {
      if (e.type === 'health')
        health.push({ id: e.id, health: e.health, previous: e.previous, reason: e.reason });
    });
  });

  afterEach(async () => {
    for (const t of timers) clearInterval(t);
    await monitor?.close();
    monitor = undefined;
    for (const s of servers) await s.stop();
    await registry.close();
  });

  async function server(kind: 'tcp' | 'http'): Promise<MemberServer> {
    const s = new MemberServer(kind);
    servers.push(s);
    await s.start();
    return s;
  }

  async function startMonitor(
    pools: Record<string, Partial<PoolHealthConfig>>,
    extra: Partial<HealthMonitorOptions> = {},
  ): Promise<HealthMonitor> {
    monitor = new HealthMonitor({ registry, pools, onError: (e) => errors.push(e), ...extra });
    monitor.on('transition', (t) => transitions.push(t));
    await monitor.start();
    return monitor;
  }

  const healthOf = (id: string) => health.filter((h) => h.id === id).map((h) => h.health);
  const fast = { intervalMs: 25, timeoutMs: 500, fall: 2, downAfter: 2, rise: 2 } as const;

  function member(id: string, pool: string, port: number, extra: Partial<Member> = {}): Member {
    return makeMember({ id, pool, addresses: [HOST], ports: { main: port }, ...extra });
  }

  it('a stopped TCP member goes suspect then down; restarted, it comes back up', async () => {
    const s = await server('tcp');
    await registry.register(member('m1', 'game', s.port));
    await startMonitor({ game: { kind: 'tcp', ...fast } });
    await until(() => (monitor?.states()[0]?.successes ?? 0) >= 1, 'a first passing check');

    await s.stop();
    await until(() => healthOf('m1').includes('down'), 'm1 down');
    assert.deepEqual(healthOf('m1'), ['suspect', 'down']);
    assert.match(health[0]!.reason, /2 consecutive failures \(last: tcp connect ECONNREFUSED\)/);
    assert.equal((await registry.get('m1'))?.health, 'down');

    await s.start();
    await until(() => healthOf('m1').at(-1) === 'up', 'm1 up again');
    assert.deepEqual(healthOf('m1'), ['suspect', 'down', 'up']);
    assert.deepEqual(
      transitions.map((t) => `${t.id}:${t.from}->${t.to}`),
      ['m1:up->suspect', 'm1:suspect->down', 'm1:down->up'],
    );
    assert.deepEqual(errors, []);
  });

  it('checks HTTP members on the configured path and status range', async () => {
    const s = await server('http');
    await registry.register(member('w1', 'web', s.port));
    await startMonitor({ web: { kind: 'http', path: '/status', ...fast } });
    await until(() => s.paths.length >= 2, 'two checks');
    assert.ok(s.paths.every((p) => p === '/status'));

    s.status = 503;
    await until(() => healthOf('w1').includes('down'), 'w1 down');
    assert.match(health.find((h) => h.health === 'suspect')!.reason, /http status 503 not in 200-399/);
    s.status = 204;
    await until(() => healthOf('w1').at(-1) === 'up', 'w1 up');
    assert.deepEqual(healthOf('w1'), ['suspect', 'down', 'up']);
  });

  it('a drained member stays draining whatever the checks say; undrain gives what they imply', async () => {
    const s = await server('tcp');
    await registry.register(member('m1', 'game', s.port));
    const mon = await startMonitor({ game: { kind: 'tcp', ...fast } });
    await mon.drain('m1', 'deploying');
    assert.equal((await registry.get('m1'))?.health, 'draining');
    assert.equal(health.at(-1)?.reason, 'deploying');

    await s.stop();
    await until(() => mon.states()[0]?.implied === 'down', 'the checks to imply down');
    assert.equal((await registry.get('m1'))?.health, 'draining');
    assert.deepEqual(healthOf('m1'), ['draining']);

    await mon.undrain('m1');
    assert.equal((await registry.get('m1'))?.health, 'down');
    await s.start();
    await until(() => healthOf('m1').at(-1) === 'up', 'm1 up');
    assert.deepEqual(healthOf('m1'), ['draining', 'down', 'up']);
    await assert.rejects(
      mon.drain('nobody'),
      (e: unknown) => (e as { code?: string }).code === 'USHER_ERR_NOT_FOUND',
    );
  });

  it('follows a drain written to the registry by someone else, and its undrain', async () => {
    const s = await server('tcp');
    await registry.register(member('m1', 'game', s.port));
    const mon = await startMonitor({ game: { kind: 'tcp', ...fast } });
    await registry.setHealth('m1', 'draining', 'admin drain');
    assert.equal(mon.states()[0]?.drained, true);
    await s.stop();
    await until(() => mon.states()[0]?.implied === 'down', 'the checks to imply down');
    assert.equal((await registry.get('m1'))?.health, 'draining', 'the monitor does not overwrite the drain');

    await registry.setHealth('m1', 'up', 'admin undrain');
    assert.equal(mon.states()[0]?.drained, false);
    await until(() => healthOf('m1').at(-1) === 'down', 'the monitor to correct up to down');
    assert.deepEqual(healthOf('m1'), ['draining', 'up', 'down']);
  });

  it('missed load reports make a member suspect then down; reports on time bring it back up', async () => {
    await registry.register(member('a1', 'agents', 1));
    await startMonitor({ agents: { kind: 'none', reportIntervalMs: 30, missedReports: 2, ...fast } });
    await until(() => healthOf('a1').includes('down'), 'a1 down after missed reports');
    assert.deepEqual(healthOf('a1'), ['suspect', 'down']);
    assert.match(health[0]!.reason, /no load report for \d+ ms \(expected every 30 ms\)/);

    const reporter = setInterval(() => {
      registry.report('a1', emptyLoad(Date.now())).catch(() => {});
    }, 10);
    timers.push(reporter);
    await until(() => healthOf('a1').at(-1) === 'up', 'a1 up once reports flow');
    assert.deepEqual(healthOf('a1'), ['suspect', 'down', 'up']);
    assert.equal(transitions.at(-1)?.reason, '2 consecutive successes (last: load reports on time)');
  });

  it('missed reports hold a member whose port still answers at suspect until it reports again', async () => {
    const s = await server('tcp');
    await registry.register(member('m1', 'game', s.port));
    const mon = await startMonitor({
      game: { kind: 'tcp', reportIntervalMs: 30, missedReports: 2, ...fast, downAfter: 1_000 },
    });
    await until(() => healthOf('m1').includes('suspect'), 'm1 suspect');
    const checks = (mon.states()[0]?.lastCheck?.ok ?? false) === true;
    assert.ok(checks, 'checks pass meanwhile');
    await registry.report('m1', emptyLoad(Date.now()));
    await until(() => healthOf('m1').at(-1) === 'up', 'm1 up after a report');
    assert.deepEqual(healthOf('m1'), ['suspect', 'up']);
  });

  it('passive signals move the state; unknown ids are ignored', async () => {
    await registry.register(member('p1', 'passive', 1));
    const mon = await startMonitor({ passive: { kind: 'none', ...fast, rise: 1 } });
    assert.equal(mon.recordPassive('p1', false, 'upstream reset'), undefined);
    assert.equal(mon.recordPassive('p1', false, 'upstream reset')?.to, 'suspect');
    mon.recordPassive('p1', false, 'timeout');
    assert.equal(mon.recordPassive('p1', false, 'timeout')?.to, 'down');
    assert.equal(mon.recordPassive('p1', true, 'request ok')?.to, 'up');
    assert.equal(mon.recordPassive('ghost', false, 'x'), undefined);
    await until(() => healthOf('p1').length === 3, 'three registry writes');
    assert.deepEqual(healthOf('p1'), ['suspect', 'down', 'up']);
  });

  it('follows members joining and leaving, and starts from the health the registry holds', async () => {
    const s = await server('tcp');
    await registry.register(member('old', 'game', s.port), { health: 'down' });
    const mon = await startMonitor({ game: { kind: 'tcp', ...fast } });
    assert.equal(mon.states()[0]?.state, 'down');
    await until(() => healthOf('old').at(-1) === 'up', 'old up after `rise` passes');
    assert.equal(health.find((h) => h.id === 'old')?.previous, 'down');

    const checked = new Set<string>();
    mon.on('check', (id) => checked.add(id));
    await registry.register(member('new', 'game', s.port));
    await until(() => checked.has('new'), 'a check of the new member');
    await registry.deregister('new');
    assert.deepEqual(
      mon.states().map((m) => m.id),
      ['old'],
    );
    await registry.deregister('old');
    assert.deepEqual(mon.states(), []);
    assert.deepEqual(errors, []);
  });

  it('takes per-member overrides from labels', async () => {
    const http1 = await server('http');
    await registry.register(
      makeMember({
        id: 'h1',
        pool: 'game',
        addresses: [HOST],
        ports: { main: 1, admin: http1.port },
        labels: { 'health.kind': 'http', 'health.port': 'admin', 'health.path': '/ready' },
      }),
    );
    await startMonitor({ game: { kind: 'tcp', ...fast } });
    await until(() => http1.paths.length >= 1, 'an HTTP check on the admin port');
    assert.equal(http1.paths[0], '/ready');
  });

  it('validates pool config with the path of the bad key, and close is idempotent', async () => {
    assert.throws(
      () => new HealthMonitor({ registry, pools: { web: { intervalMs: 0 } } }),
      /pools\.web\.health\.intervalMs: expected a number > 0, got 0/,
    );
    assert.throws(() => resolvePoolHealth({ fall: 0 }), /health: health\.fall: expected an integer >= 1/);
    const mon = await startMonitor({});
    await mon.close();
    await mon.close();
    await registry.register(member('late', 'game', 1));
    assert.deepEqual(mon.states(), []);
  });
});
