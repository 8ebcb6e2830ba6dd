/**
 * Seed 002 (self-selecting cluster), C2.1 delivery with the kernel filter: three members share
 * one MAC and one virtual IP behind a hub, every member sees every frame, and each member's
 * nftables cluster table keeps only its share. Plain curl from a client on the same hub.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { applyClusterTable, type HashRange, renderClusterTable } from '../../src/cluster/nft-filter.js';
import { createLab, type Host, type Lab, type LabProcess, labAvailable } from '../lab/lab.js';
import { killInNamespaces, pidsInNamespaces } from '../lab/sweep.js';
import { eventually } from '../support/wait.js';
import {
  accessLog,
  addMember,
  ECHO_PORT,
  type Fetch,
  fetchMany,
  HTTP_PORT,
  type Member,
  proportionalRanges,
  tally,
  VIP,
} from './fixtures/hub-cluster.js';

const skip = labAvailable('nft', 'nginx', 'curl', 'socat', 'xargs', 'seq');
const CAPACITY: Record<string, number> = { m1: 1, m2: 2, m3: 1 };
const CONNECTIONS = 1000;
const TOLERANCE = 0.03;
const ABSORB_DEADLINE_MS = 2000;
/** Client source ports (fixed, outside the ephemeral range): the split is reproducible. */
const PORTS = { split: 20000, lived: 22000, poll: 23000, after: 26000 };

interface Lived {
  port: number;
  member: string;
  proc: LabProcess;
}

describe('cluster filter behind a hub (lab, seed 002 C2.1)', { skip }, () => {
  let lab: Lab;
  let client: Host;
  const members = new Map<string, Member>();

  const apply = (ranges: Record<string, HashRange[]>) =>
    Promise.all(
      Object.entries(ranges).map(([id, r]) =>
        applyClusterTable(renderClusterTable({ vip: VIP, ports: [HTTP_PORT, ECHO_PORT], ranges: r }), {
          netns: members.get(id)!.host.ns,
        }),
      ),
    );

  before(async () => {
    lab = await createLab();
    const hub = await lab.bridge('hub', { hub: true });
    client = await lab.host('client');
    await lab.attach(client, hub, { addr: '10.77.0.2/24', mac: '02:00:00:77:00:02' });
    const ids = Object.keys(CAPACITY);
    for (const m of await Promise.all(ids.map((id, i) => addMember(lab, hub, id, i)))) members.set(m.id, m);
  });

  after(async () => {
    await lab?.close();
    await Promise.all([...members.values()].map((m) => rm(m.dir, { recursive: true, force: true })));
  });

  it('without filters every member answers the SYN and curl to the VIP fails', async () => {
    let failed = 0;
    for (let i = 0; i < 5; i++) {
      const r = await client.exec('curl', ['-s', '-o', '/dev/null', '--max-time', '3', `http://${VIP}/`], {
        reject: false,
      });
      if (r.code !== 0) failed++;
    }
    assert.ok(failed >= 4, `expected (almost) every curl to fail without filters, ${failed}/5 failed`);
  });

  it('with filters, 1,000 connections are each answered by one member, in proportion to capacity', async (t) => {
    await apply(proportionalRanges(CAPACITY));
    const fetches = await fetchMany(client, PORTS.split, CONNECTIONS, { parallel: 32 });
    const counts = tally(fetches);
    t.diagnostic(`split of ${CONNECTIONS} connections (capacity 1:2:1): ${JSON.stringify(counts)}`);
    assert.equal(fetches.length, CONNECTIONS, 'curl reported every transfer');
    assert.deepEqual(
      fetches.filter((f) => f.status !== '200' || f.connects !== 1 || !members.has(f.body)),
      [],
      'every transfer: HTTP 200, one new connection, a member name as body',
    );
    // Exactly one member served each request: each port is in one access log only.
    const logs = await Promise.all([...members.values()].map(accessLog));
    for (const f of fetches) {
      const servedBy = [...members.keys()].filter((_, i) => logs[i]!.has(f.port));
      assert.deepEqual(servedBy, [f.body], `port ${f.port} served by exactly the member that answered`);
    }
    const total = Object.values(CAPACITY).reduce((a, b) => a + b, 0);
    for (const [id, cap] of Object.entries(CAPACITY)) {
      const share = (counts[id] ?? 0) / CONNECTIONS;
      assert.ok(
        Math.abs(share - cap / total) <= TOLERANCE,
        `${id}: share ${share} should be within ±${TOLERANCE} of ${cap / total}`,
      );
    }
  });

  it('a member dies: survivors absorb its share within 2 s, their live connections see no RST', async (t) => {
    // Long-lived connections to the echo service, opened under the 1:2:1 plan.
    const lived: Lived[] = [];
    for (let i = 0; i < 16; i++) {
      const port = PORTS.lived + i;
      const target = `TCP:${VIP}:${ECHO_PORT},sourceport=${port},connect-timeout=5`;
      const proc = client.spawn('socat', ['-', target], { stdin: 'pipe' });
      const member = (await proc.waitForLine(/^m\d$/, { timeoutMs: 10_000 })).trim();
      lived.push({ port, member, proc });
    }
    const victim = members.get('m3')!;
    const survivors = lived.filter((l) => l.member !== victim.id);
    t.diagnostic(`long-lived connections per member: ${JSON.stringify(countBy(lived.map((l) => l.member)))}`);
    for (const id of ['m1', 'm2'])
      assert.ok(
        survivors.some((l) => l.member === id),
        `need a long-lived connection on ${id}`,
      );

    // The client counts RSTs arriving on the survivors' connections.
    await client.nft(`table ip watch {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    ip saddr ${VIP} tcp sport ${ECHO_PORT} tcp dport { ${survivors.map((l) => l.port).join(', ')} } tcp flags & rst == rst counter
  }
}
`);

    // Kill m3: its link goes down, everything running in it dies.
    const killedAt = Date.now();
    await victim.host.ip(['link', 'set', victim.ifname, 'down']);
    killInNamespaces([victim.host.ns]);
    // The test plays the coordinator: new ranges for the survivors, sliced in the other order
    // (m2 first) so that many live flows now hash into the other survivor's range.
    await apply(proportionalRanges({ m2: CAPACITY.m2!, m1: CAPACITY.m1! }));

    let next = PORTS.poll;
    const absorbed = await eventually(
      async () => {
        const batch = await fetchMany(client, next, 30, { parallel: 30, timeoutS: 0.5 });
        next += 30;
        const bad = batch.filter((f) => f.status !== '200' || (f.body !== 'm1' && f.body !== 'm2'));
        assert.deepEqual(bad, [], 'every new connection answered by a survivor');
        return Date.now() - killedAt;
      },
      ABSORB_DEADLINE_MS - (Date.now() - killedAt),
      10,
    );
    t.diagnostic(`m3's share absorbed ${absorbed} ms after the kill`);
    assert.ok(absorbed <= ABSORB_DEADLINE_MS, `absorbed after ${absorbed} ms`);
    await eventually(() =>
      assert.deepEqual(pidsInNamespaces([victim.host.ns]).get(victim.host.ns), [], 'nothing runs in m3'),
    );

    const fetches = await fetchMany(client, PORTS.after, 300, { parallel: 32 });
    t.diagnostic(`after the kill, 300 connections: ${JSON.stringify(tally(fetches))}`);
    assert.deepEqual(
      fetches.filter((f: Fetch) => f.status !== '200' || !['m1', 'm2'].includes(f.body)),
      [],
      'all answered by survivors',
    );

    // The survivors' live connections still carry data both ways, and no RST ever arrived.
    for (const l of survivors) {
      l.proc.child.stdin!.write(`after-${l.port}\n`);
      await l.proc.waitForLine(`after-${l.port}`, { timeoutMs: 5000 });
      assert.equal(l.proc.exit, null, `connection from port ${l.port} still open`);
    }
    const rules = (await client.exec('nft', ['list', 'chain', 'ip', 'watch', 'pre'])).stdout;
    assert.match(rules, /counter packets 0 bytes 0/, `RSTs seen by survivors' connections:\n${rules}`);
  });
});

function countBy(items: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of items) counts[i] = (counts[i] ?? 0) + 1;
  return counts;
}
