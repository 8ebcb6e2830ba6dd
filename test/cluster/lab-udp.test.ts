/**
 * Seed 002 (self-selecting cluster), C2.1 delivery with the userspace UDP filter: three members
 * on a hub each join one multicast group; a client sends datagrams to the group from many
 * source ports; every member receives every datagram and each delivers only its share.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ownerOf, planRanges } from '../../src/cluster/plan.js';
import { connectionValue } from '../../src/cluster/value.js';
import { createLab, type Host, type Lab, type LabProcess, labAvailable } from '../lab/lab.js';
import { eventually } from '../support/wait.js';

const skip = labAvailable();
const ROOT = resolve('.');
const NODE = process.execPath;
const GROUP = '239.78.0.1';
const PORT = 7000;
const CLIENT = '10.78.0.2';
const IDS = ['m1', 'm2', 'm3'];
const DATAGRAMS = 300;
const FIRST_PORT = 30000;

/** Sends one datagram `p<port>` to the group from each source port FIRST..FIRST+COUNT-1. */
const SENDER = `
const dgram = require('node:dgram');
const [group, port, local, first, count] = process.argv.slice(1);
(async () => {
  for (let i = 0; i < Number(count); i++) {
    const src = Number(first) + i;
    const s = dgram.createSocket('udp4');
    await new Promise((ok) => s.bind(src, local, ok));
    s.setMulticastInterface(local);
    await new Promise((ok, ko) => s.send('p' + src, Number(port), group, (e) => (e ? ko(e) : ok())));
    await new Promise((ok) => s.close(ok));
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Sends one datagram `ask` to the group from PORT and prints the reply as `<from address>:<port> <text>`. */
const ASKER = `
const dgram = require('node:dgram');
const [group, port, local, src] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.bind(Number(src), local, () => {
  s.setMulticastInterface(local);
  s.on('message', (d, r) => { console.log(r.address + ':' + r.port + ' ' + d); s.close(); });
  s.send('ask', Number(port), group);
});
setTimeout(() => { console.error('no reply'); process.exit(1); }, 5000).unref();
`;

describe('UDP multicast filter behind a hub (lab, seed 002 C2.1)', { skip }, () => {
  let lab: Lab;
  let client: Host;
  const members = new Map<string, LabProcess>();

  before(async () => {
    lab = await createLab();
    const hub = await lab.bridge('hub', { hub: true });
    client = await lab.host('client');
    const { ifname } = await lab.attach(client, hub, { addr: `${CLIENT}/24` });
    await client.ip(['route', 'add', '224.0.0.0/4', 'dev', ifname]);
    await Promise.all(
      IDS.map(async (id, i) => {
        const host = await lab.host(id);
        const addr = `10.78.0.${11 + i}`;
        await lab.attach(host, hub, { addr: `${addr}/24` });
        const script = resolve(ROOT, 'test/cluster/fixtures/udp-member.ts');
        const proc = host.spawn(
          NODE,
          ['--import', 'tsx', script, GROUP, String(PORT), addr, id, IDS.join(',')],
          {
            cwd: ROOT,
          },
        );
        members.set(id, proc);
        await proc.waitForLine(/^ready$/, { timeoutMs: 20_000 });
      }),
    );
  });

  after(async () => {
    await lab?.close();
  });

  it('the UDP multicast filter delivers each datagram to exactly one member, the predicted owner', async (t) => {
    await client.exec(
      NODE,
      ['-e', SENDER, GROUP, String(PORT), CLIENT, String(FIRST_PORT), String(DATAGRAMS)],
      {
        timeoutMs: 60_000,
      },
    );
    const plan = planRanges(IDS.map((id) => ({ id, availability: 1 })));
    const judged = (proc: LabProcess) =>
      proc.stdout
        .split('\n')
        .map((l) => l.split(' '))
        .filter((f) => f[0] === 'accept' || f[0] === 'drop');
    // Every member has judged every datagram (the hub floods them all): nothing left in flight.
    await eventually(() => {
      for (const [id, proc] of members)
        assert.equal(judged(proc).length, DATAGRAMS, `${id} judged all ${DATAGRAMS} datagrams`);
    }, 15_000);
    const deliveredBy = new Map<string, string[]>();
    const counts: Record<string, number> = {};
    for (const [id, proc] of members) {
      for (const f of judged(proc)) {
        assert.ok(f[0] === 'accept' || f[1] === 'not-mine', `${id}: unexpected drop ${f.join(' ')}`);
        if (f[0] !== 'accept') continue;
        deliveredBy.set(f[1]!, [...(deliveredBy.get(f[1]!) ?? []), id]);
        counts[id] = (counts[id] ?? 0) + 1;
      }
    }
    t.diagnostic(`split of ${DATAGRAMS} datagrams (equal availability): ${JSON.stringify(counts)}`);
    for (let i = 0; i < DATAGRAMS; i++) {
      const srcPort = FIRST_PORT + i;
      const owner = ownerOf(plan, connectionValue({ srcAddress: CLIENT, srcPort }));
      assert.deepEqual(deliveredBy.get(`p${srcPort}`), [owner], `p${srcPort} delivered by exactly ${owner}`);
    }
    for (const id of IDS) assert.ok((counts[id] ?? 0) > 0, `${id} delivered some datagrams`);
  });

  it("a reply comes from the owner's own address and the service port", async () => {
    const src = 40000;
    const { stdout } = await client.exec(NODE, ['-e', ASKER, GROUP, String(PORT), CLIENT, String(src)], {
      timeoutMs: 10_000,
    });
    const plan = planRanges(IDS.map((id) => ({ id, availability: 1 })));
    const owner = ownerOf(plan, connectionValue({ srcAddress: CLIENT, srcPort: src }))!;
    assert.equal(stdout.trim(), `10.78.0.${11 + IDS.indexOf(owner)}:${PORT} ${owner} ask`);
  });
});
