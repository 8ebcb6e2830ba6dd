/**
 * Seed 002 end to end with `usher run`: three members share one MAC and one virtual IP behind a
 * hub, each runs nginx and `usher run` with the mesh registry and the cluster role. Nobody
 * hands out ranges: each member publishes its availability through the mesh, computes every
 * member's share from the same view and filters its own with nftables (C2.3, C2.5a). When one
 * member's host dies (link down, every process killed), the survivors' mesh declares it dead
 * and they take its share over without a coordinator.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLab, type Host, type Lab, type LabProcess, labAvailable } from '../lab/lab.js';
import { killInNamespaces } from '../lab/sweep.js';
import { USHER_BIN } from '../support/usher-process.js';
import { eventually } from '../support/wait.js';
import { addMember, fetchMany, HTTP_PORT, type Member, tally, VIP } from './fixtures/hub-cluster.js';

const skip = labAvailable('nft', 'nginx', 'curl', 'socat', 'xargs', 'seq');
const CAPACITY: Record<string, number> = { m1: 1, m2: 2, m3: 1 };
const CONNECTIONS = 1000;
const TOLERANCE = 0.03;
const ABSORB_DEADLINE_MS = 2000;
const MESH_PORT = 9400;
const PORTS = { ready: 30000, split: 31000, poll: 33000, after: 36000 };

describe('self-selecting cluster run by usher (lab, seed 002)', { skip }, () => {
  let lab: Lab;
  let client: Host;
  let dir: string;
  const members = new Map<string, Member>();
  const ushers = new Map<string, LabProcess>();
  const mgmt = (i: number) => `10.77.0.${11 + i}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'usher-cluster-run-'));
    lab = await createLab();
    const hub = await lab.bridge('hub', { hub: true });
    client = await lab.host('client');
    await lab.attach(client, hub, { addr: '10.77.0.2/24', mac: '02:00:00:77:00:02' });
    const ids = Object.keys(CAPACITY);
    for (const m of await Promise.all(ids.map((id, i) => addMember(lab, hub, id, i)))) members.set(m.id, m);
    for (const [i, id] of ids.entries()) {
      const config = {
        registry: {
          kind: 'mesh',
          mesh: {
            node: id,
            host: mgmt(i),
            port: MESH_PORT,
            seeds: ids.filter((o) => o !== id).map((o) => `${mgmt(ids.indexOf(o))}:${MESH_PORT}`),
            // A dead host answers nothing (no RST, no refusal): detection is by silence.
            intervalMs: 100,
            pingTimeoutMs: 150,
            suspicionMinMs: 300,
            suspicionMaxMs: 800,
          },
        },
        log: { level: 'info', format: 'json' },
        pools: { web: { health: { kind: 'none' } } },
        cluster: {
          pool: 'web',
          member: { id, address: mgmt(i), port: HTTP_PORT },
          vip: VIP,
          ports: [HTTP_PORT],
          availability: CAPACITY[id],
          intervalMs: 500,
        },
      };
      const file = join(dir, `${id}.json`);
      await writeFile(file, JSON.stringify(config));
      const usher = members.get(id)!.host.spawn(process.execPath, [USHER_BIN, 'run', file], {
        env: { USHER_MESH_SECRET: 'lab secret 0123456789' },
      });
      ushers.set(id, usher);
    }
    await Promise.all(
      [...ushers.values()].map((u) => u.waitForLine(/usher: running/, { timeoutMs: 30_000 })),
    );
  });

  after(async () => {
    if (process.env.USHER_DEBUG_LAB)
      for (const [id, u] of ushers)
        console.log(
          `--- ${id}\n${u.stderr
            .split('\n')
            .filter((l) => /mesh|cluster|warn|error/i.test(l))
            .slice(-40)
            .join('\n')}`,
        );
    await lab?.close();
    await Promise.all([...members.values()].map((m) => rm(m.dir, { recursive: true, force: true })));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the members agree on ranges by themselves: 1,000 connections, one member each, in proportion to availability', async (t) => {
    // Converged once every connection of a batch is answered (each member filters its share).
    let next = PORTS.ready;
    await eventually(
      async () => {
        const batch = await fetchMany(client, next, 40, { parallel: 40, timeoutS: 1 });
        next += 40;
        const bad = batch.filter((f) => f.status !== '200');
        assert.equal(bad.length, 0, `every connection answered once the plans agree (${bad.length} failed)`);
      },
      30_000,
      200,
    );
    const fetches = await fetchMany(client, PORTS.split, CONNECTIONS, { parallel: 32 });
    const counts = tally(fetches);
    t.diagnostic(`split of ${CONNECTIONS} connections (availability 1:2:1): ${JSON.stringify(counts)}`);
    assert.deepEqual(
      fetches.filter((f) => f.status !== '200' || f.connects !== 1 || !members.has(f.body)),
      [],
      'every transfer: HTTP 200 on one new connection, answered by a member',
    );
    const total = Object.values(CAPACITY).reduce((a, b) => a + b, 0);
    for (const [id, cap] of Object.entries(CAPACITY)) {
      const share = (counts[id] ?? 0) / CONNECTIONS;
      assert.ok(
        Math.abs(share - cap / total) <= TOLERANCE,
        `${id}: share ${share} should be within ±${TOLERANCE} of ${cap / total}`,
      );
    }
  });

  it('a member host dies: the survivors detect it through the mesh and absorb its share within 2 s', async (t) => {
    const victim = members.get('m3')!;
    const killedAt = Date.now();
    await victim.host.ip(['link', 'set', victim.ifname, 'down']);
    killInNamespaces([victim.host.ns]);
    let next = PORTS.poll;
    const absorbed = await eventually(
      async () => {
        const started = Date.now();
        const batch = await fetchMany(client, next, 30, { parallel: 30, timeoutS: 0.3 });
        next += 30;
        const bad = batch.filter((f) => f.status !== '200' || (f.body !== 'm1' && f.body !== 'm2'));
        assert.equal(bad.length, 0, `every new connection answered by a survivor (${bad.length} not)`);
        return started - killedAt; // the first batch started after the take-over that was all answered
      },
      10_000,
      10,
    );
    t.diagnostic(`m3's share absorbed ${absorbed} ms after its host died`);
    assert.ok(absorbed <= ABSORB_DEADLINE_MS, `absorbed ${absorbed} ms after the kill (deadline 2 s)`);
    const fetches = await fetchMany(client, PORTS.after, 300, { parallel: 32 });
    const counts = tally(fetches);
    t.diagnostic(`after: ${JSON.stringify(counts)}`);
    assert.equal((counts.m1 ?? 0) + (counts.m2 ?? 0), 300, 'all answered by the survivors');
  });
});
