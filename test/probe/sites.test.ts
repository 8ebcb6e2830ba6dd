/**
 * P0.9 across hosts: two sites, `east` and `west`, each with its own assigner (`usher run`), one
 * game world and one player, joined through a router. Each assigner knows both sites' members
 * and prefers its own; the worlds relay positions to each other, so the two players share one
 * world; when east's world dies, east's assigner places its player on west's world.
 *
 *   site east 10.202.1.0/24                       site west 10.202.2.0/24
 *   assigna .10 (answer mode)  ┐              ┌  assignb .10 (forward mode)
 *   a1 .11 (game-world)        ├─ router .1 ──┤  b1 .11 (game-world)
 *   clienta .20 (ana)          ┘              └  clientb .20 (bob)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLab, type Host, type Lab, type LabProcess, labAvailable } from '../lab/lab.js';
import { events, metric, waitEvent } from './lab-events.js';

const ROOT = resolve('.');
const NODE = process.execPath;
const SECRET = 'lab-relay-secret-0123456789abcdef';
const PORT = 7000;

interface Site {
  readonly name: 'east' | 'west';
  readonly net: string;
  assigner?: Host;
  usher?: LabProcess;
  adminPort?: number;
  world?: LabProcess;
  client?: Host;
}

describe('probe across two sites (lab, P0.9)', { skip: labAvailable('curl'), timeout: 60_000 }, () => {
  let lab: Lab;
  const east: Site = { name: 'east', net: '10.202.1' };
  const west: Site = { name: 'west', net: '10.202.2' };
  const memberLine = (s: Site, id: string) =>
    `      - { id: ${id}, address: ${s.net}.11, port: ${PORT}, site: ${s.name} }`;

  before(async () => {
    lab = await createLab();
    const router = await lab.host('router');
    const bridges = { east: await lab.bridge('sitea'), west: await lab.bridge('siteb') };
    for (const s of [east, west]) await lab.attach(router, bridges[s.name], { addr: `${s.net}.1/24` });
    await router.router();

    for (const s of [east, west]) {
      const tag = s === east ? 'a' : 'b';
      const [assigner, world, client] = [
        await lab.host(`assign${tag}`),
        await lab.host(`${tag}1`),
        await lab.host(`client${tag}`),
      ];
      for (const [h, last] of [
        [assigner, 10],
        [world, 11],
        [client, 20],
      ] as const) {
        await lab.attach(h, bridges[s.name], { addr: `${s.net}.${last}/24` });
        await h.defaultRoute(`${s.net}.1`);
      }
      s.assigner = assigner;
      s.client = client;
      const other = s === east ? west : east;
      s.world = world.spawn(NODE, [
        '--import',
        'tsx',
        join(ROOT, 'examples/game-world.ts'),
        ...['--host', `${s.net}.11`, '--port', String(PORT), '--id', `${tag}1`, '--site', s.name],
        ...['--incarnations', 'world-1'],
        // Both assigners may place clients here (west's assigner overflows to east and back).
        ...['--assigner', `${east.net}.10`, '--assigner', `${west.net}.10`],
        ...['--peer', `${other.net}.11:${PORT}`, '--relay-secret', SECRET],
      ]);
    }

    const dir = mkdtempSync(join(tmpdir(), 'usher-sites-lab-'));
    for (const s of [east, west]) {
      const config = join(dir, `${s.name}.yaml`);
      writeFileSync(
        config,
        `log: { format: json, level: info }
admin: { host: 127.0.0.1, port: 0 }
pools:
  game:
    policy: { name: round-robin }
    health: { kind: udp, app: game, intervalMs: 200, timeoutMs: 150, fall: 1, downAfter: 1, rise: 1, flapPenalty: 0 }
    members:
${memberLine(east, 'a1')}
${memberLine(west, 'b1')}
assigner:
  host: ${s.net}.10
  port: 9190
  site: ${s.name}
  mode: ${s === east ? 'answer' : 'forward'}
  apps: { game: { pool: game, incarnations: [world-1] } }
  rateLimit: { perSecond: 1000, burst: 1000 }
`,
      );
      s.usher = s.assigner!.spawn(NODE, [join(ROOT, 'bin/usher.js'), 'run', config], { cwd: ROOT });
    }
    for (const s of [east, west]) {
      const line = await s.usher!.waitForLine(/dashboard http:\/\/127\.0\.0\.1:(\d+)\//, {
        timeoutMs: 20000,
      });
      s.adminPort = Number(/:(\d+)\//.exec(line)![1]);
      await s.world!.waitForLine(/listening/, { timeoutMs: 20000 });
    }
    // Both assigners see both worlds up (through the router) before any client comes.
    for (const s of [east, west]) {
      const deadline = Date.now() + 15000;
      for (;;) {
        const { stdout } = await s.assigner!.exec('curl', [
          '-s',
          `http://127.0.0.1:${s.adminPort}/api/v1/state`,
        ]);
        const state = JSON.parse(stdout) as { pools: { members: { id: string; health: string }[] }[] };
        const health = state.pools.flatMap((p) => p.members.map((m) => `${m.id}:${m.health}`)).sort();
        if (health.join(' ') === 'a1:up b1:up') break;
        assert.ok(Date.now() < deadline, `assigner ${s.name} sees ${health.join(' ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  after(async () => {
    await lab?.close();
  });

  it('players of two sites share one world through the relay; a dead world overflows to the other site', async () => {
    const play = (s: Site, user: string) =>
      s.client!.spawn(
        NODE,
        ['--import', 'tsx', join(ROOT, 'test/probe/fixtures/site-client.ts'), `${s.net}.10:9190`, user],
        { cwd: ROOT },
      );
    const ana = play(east, 'ana');
    const bob = play(west, 'bob');

    // Each placed on its own site's world.
    const a0 = await waitEvent(ana, 'ana assigned', (e) => e.event === 'assigned');
    const b0 = await waitEvent(bob, 'bob assigned', (e) => e.event === 'assigned');
    assert.equal(a0.member, 'a1', 'east places ana in east');
    assert.equal(b0.member, 'b1', 'west places bob in west');

    // Server to server: each sees the other's moves although they are on different worlds.
    await waitEvent(
      ana,
      'ana seeing bob (relayed by b1 to a1)',
      (e) => e.event === 'saw' && e.player === 'bob',
    );
    await waitEvent(
      bob,
      'bob seeing ana (relayed by a1 to b1)',
      (e) => e.event === 'saw' && e.player === 'ana',
    );
    assert.equal(
      await metric(east.assigner!, east.adminPort!, 'usher_probe_overflow_total'),
      0,
      'no overflow yet',
    );

    // kill -9 east's world: ana is lost, and east's assigner places her in west.
    const killedAt = Date.now();
    process.kill(east.world!.pid, 'SIGKILL');
    await waitEvent(ana, 'ana lost', (e) => e.event === 'lost' && e.at >= killedAt);
    const moved = await waitEvent(
      ana,
      'ana reassigned to b1',
      (e) => e.event === 'reassigned' && e.at >= killedAt && e.member === 'b1',
    );
    console.log(`# ana placed on b1 (west) ${moved.at - killedAt} ms after kill -9 of a1`);
    assert.ok(
      (await metric(east.assigner!, east.adminPort!, 'usher_probe_overflow_total{from="east",to="west"}')) >=
        1,
      'counted as overflow east → west',
    );

    // And they keep playing together, now on the same world.
    await waitEvent(
      ana,
      'ana seeing bob on b1',
      (e) => e.event === 'saw' && e.player === 'bob' && e.at > moved.at,
    );
    await waitEvent(
      bob,
      'bob seeing ana again',
      (e) => e.event === 'saw' && e.player === 'ana' && e.at > moved.at,
    );
    assert.equal(
      events(bob).filter((e) => e.event === 'lost').length,
      0,
      'bob, on the surviving site, never noticed',
    );
  });
});
