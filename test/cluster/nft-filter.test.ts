/**
 * The cluster filter's nftables script: rendered text for the edge cases, input validation,
 * the apply/remove transactions (with a fake runner), and — as root with nft — the kernel's
 * own verdict on the scripts (`nft -c`) and a real apply/replace/remove in a throwaway namespace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  applyClusterTable,
  type ClusterTableOptions,
  checkClusterTable,
  clusterTableOf,
  type HashRange,
  NftCommandError,
  type NftExec,
  removeClusterTable,
  renderClusterTable,
} from '../../src/cluster/nft-filter.js';
import { createLab, type Host, type Lab, labAvailable } from '../lab/lab.js';

const VIP = '10.77.0.100';

/** The hash rule's vmap elements as intervals, e.g. `0-7999, 9` → [[0, 7999], [9, 9]]. */
function vmapRanges(script: string, proto = 'tcp'): Array<[number, number]> {
  const chain = new RegExp(`chain ${proto}_in \\{[^}]*?vmap \\{ ([^}]*) \\}`).exec(script);
  if (!chain) return [];
  return chain[1]!.split(', ').map((el) => {
    const m = /^(\d+)(?:-(\d+))? : jump mine$/.exec(el);
    assert.ok(m, `unexpected vmap element ${el}`);
    return [Number(m[1]), Number(m[2] ?? m[1])];
  });
}

function invalid(options: Partial<ClusterTableOptions>, option: RegExp): void {
  assert.throws(
    () => renderClusterTable({ vip: VIP, ranges: [[0, 9]], ...options } as ClusterTableOptions),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'USHER_ERR_INVALID_ARGUMENT');
      assert.match(e.message, option);
      return true;
    },
  );
}

describe('renderClusterTable', () => {
  it('renders the documented shape for one range with the defaults', () => {
    assert.equal(
      renderClusterTable({ vip: VIP, ranges: [[0, 7999]] }),
      `table ip usher_cluster {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr 10.77.0.100 tcp dport 80 jump tcp_in
  }
  chain tcp_in {
    ct mark & 0x1 == 0x1 accept
    tcp flags & (syn | ack) == syn jhash ip saddr . tcp sport mod 32000 seed 0x5eed vmap { 0-7999 : jump mine }
    drop
  }
  chain mine {
    ct mark set ct mark | 0x1
    accept
  }
}
`,
    );
  });

  it('with no ranges keeps marked flows, takes no new ones and still drops the rest', () => {
    const s = renderClusterTable({ vip: VIP, ranges: [], udpPorts: [53] });
    assert.doesNotMatch(s, /jhash|vmap/);
    assert.match(s, /chain tcp_in \{\n {4}ct mark & 0x1 == 0x1 accept\n.*\n {4}drop\n/);
    assert.match(s, /chain udp_in \{\n {4}ct mark & 0x1 == 0x1 accept\n.*\n {4}drop\n/);
  });

  it('sorts many ranges, merges touching ones and writes single values bare', () => {
    const s = renderClusterTable({
      vip: VIP,
      ranges: [
        [30000, 31999],
        [5, 5],
        [0, 3],
        [4, 4],
        [100, 200],
        [202, 202],
      ],
    });
    assert.match(
      s,
      /vmap \{ 0-5 : jump mine, 100-200 : jump mine, 202 : jump mine, 30000-31999 : jump mine \}/,
    );
  });

  it('uses an ip6 table for an IPv6 virtual IP', () => {
    const s = renderClusterTable({ vip: 'fd00:7573::100', ranges: [[0, 9]], udpPorts: [53] });
    assert.match(s, /^table ip6 usher_cluster \{/);
    assert.match(s, /ip6 daddr fd00:7573::100 tcp dport 80 jump tcp_in/);
    assert.match(s, /ip6 daddr fd00:7573::100 udp dport 53 jump udp_in/);
    assert.match(s, /jhash ip6 saddr \. tcp sport mod 32000/);
    assert.match(s, /ct state new jhash ip6 saddr \. udp sport mod 32000/);
    assert.doesNotMatch(s, /\bip (saddr|daddr)/);
  });

  it('hashes the chosen fields, always in the order saddr, sport', () => {
    const both = renderClusterTable({ vip: VIP, ranges: [[0, 9]], fields: ['sport', 'saddr'] });
    assert.match(both, /jhash ip saddr \. tcp sport mod/);
    assert.match(renderClusterTable({ vip: VIP, ranges: [[0, 9]], fields: ['saddr'] }), /jhash ip saddr mod/);
    assert.match(
      renderClusterTable({ vip: VIP, ranges: [[0, 9]], fields: ['sport'] }),
      /jhash tcp sport mod/,
    );
  });

  it('renders ports, UDP-only tables, table name, modulus, seed and mark', () => {
    const s = renderClusterTable({
      table: 'c2',
      vip: VIP,
      ports: [8080, 80],
      udpPorts: [5353, 53],
      modulus: 1000,
      seed: 0xdeadbeef,
      mark: 0x100,
      ranges: [[0, 999]],
    });
    assert.match(s, /^table ip c2 \{/);
    assert.match(s, /tcp dport \{ 80, 8080 \} jump tcp_in/);
    assert.match(s, /udp dport \{ 53, 5353 \} jump udp_in/);
    assert.match(s, /jhash ip saddr \. udp sport mod 1000 seed 0xdeadbeef vmap \{ 0-999 : jump mine \}/);
    assert.match(s, /ct mark & 0x100 == 0x100 accept/);
    assert.match(s, /ct mark set ct mark \| 0x100/);
    const udpOnly = renderClusterTable({ vip: VIP, ports: [], udpPorts: [53], ranges: [[0, 9]] });
    assert.doesNotMatch(udpOnly, /tcp/);
  });

  it('covers exactly the values of the given ranges (property)', () => {
    const disjoint = fc.uniqueArray(fc.integer({ min: 0, max: 31999 }), { maxLength: 40 }).map((cuts) => {
      const sorted = [...cuts].sort((a, b) => a - b);
      const ranges: HashRange[] = [];
      for (let i = 0; i + 1 < sorted.length; i += 2) ranges.push([sorted[i]!, sorted[i + 1]!]);
      return ranges;
    });
    fc.assert(
      fc.property(disjoint, fc.boolean(), (ranges, reverse) => {
        const input = reverse ? [...ranges].reverse() : ranges;
        const got = vmapRanges(renderClusterTable({ vip: VIP, ranges: input }));
        const covered = (rs: readonly HashRange[]) => rs.reduce((n, [lo, hi]) => n + hi - lo + 1, 0);
        assert.equal(covered(got), covered(ranges));
        for (const [lo, hi] of ranges) assert.ok(got.some(([a, b]) => a <= lo && hi <= b));
        for (let i = 1; i < got.length; i++) assert.ok(got[i]![0] > got[i - 1]![1] + 1, 'sorted, merged');
      }),
    );
  });

  it('rejects bad input, naming the option', () => {
    invalid({ vip: '10.0.0.256' }, /^vip: /);
    invalid({ vip: 'fe80::1%eth0' }, /^vip: /);
    invalid({ vip: '' }, /^vip: /);
    invalid({ ports: [0] }, /^ports\[0\]: expected an integer in 1\.\.65535, got 0/);
    invalid({ ports: [80, 65536] }, /^ports\[1\]: /);
    invalid({ ports: [80.5] }, /^ports\[0\]: /);
    invalid({ ports: [80, 80] }, /^ports\[1\]: port 80 is listed twice/);
    invalid({ udpPorts: [-1] }, /^udpPorts\[0\]: /);
    invalid({ ports: [], udpPorts: [] }, /^ports: expected at least one/);
    invalid({ fields: [] }, /^fields: /);
    invalid({ fields: ['daddr' as 'saddr'] }, /^fields\[0\]: /);
    invalid({ fields: ['saddr', 'saddr'] }, /^fields\[1\]: saddr is listed twice/);
    invalid({ modulus: 0 }, /^modulus: /);
    invalid({ seed: -1 }, /^seed: /);
    invalid({ seed: 2 ** 32 }, /^seed: /);
    invalid({ mark: 0 }, /^mark: /);
    invalid({ table: 'no-dashes' }, /^table: /);
    invalid({ ranges: [[0, 32000]] }, /^ranges\[0\]\[1\]: expected an integer in 0\.\.31999, got 32000/);
    invalid({ ranges: [[-1, 5]] }, /^ranges\[0\]\[0\]: /);
    invalid({ ranges: [[9, 3]] }, /^ranges\[0\]: expected lo <= hi, got \[9, 3\]/);
    invalid({ ranges: [[1, 2, 3] as unknown as HashRange] }, /^ranges\[0\]: expected \[lo, hi\]/);
    invalid(
      {
        ranges: [
          [0, 10],
          [20, 30],
          [10, 15],
        ],
      },
      /^ranges\[2\]: expected ranges that do not overlap, got \[10, 15\] overlapping ranges\[0\] \[0, 10\]/,
    );
    invalid({ modulus: 100, ranges: [[0, 100]] }, /^ranges\[0\]\[1\]: expected an integer in 0\.\.99/);
  });
});

describe('applyClusterTable / removeClusterTable (fake runner)', () => {
  const script = renderClusterTable({ vip: VIP, ranges: [[0, 9]] });

  function recorder(code = 0): { exec: NftExec; calls: Array<{ argv: readonly string[]; input: string }> } {
    const calls: Array<{ argv: readonly string[]; input: string }> = [];
    const exec: NftExec = async (argv, input) => {
      calls.push({ argv, input });
      return { code, stdout: '', stderr: code === 0 ? '' : 'Error: syntax error' };
    };
    return { exec, calls };
  }

  it('replaces the table in one nft -f transaction: create if missing, delete, define', async () => {
    const { exec, calls } = recorder();
    await applyClusterTable(script, { exec });
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.argv, ['nft', '-f', '-']);
    assert.equal(calls[0]!.input, `table ip usher_cluster {}\ndelete table ip usher_cluster\n${script}`);
  });

  it('runs inside a namespace through ip netns exec', async () => {
    const { exec, calls } = recorder();
    await applyClusterTable(renderClusterTable({ table: 't6', vip: 'fd00::1', ranges: [] }), {
      exec,
      netns: 'ul-test',
    });
    const [ip, netns, verb, ns, nft, ...rest] = calls[0]!.argv;
    assert.deepEqual([ip, netns, verb, ns, rest], ['ip', 'netns', 'exec', 'ul-test', ['-f', '-']]);
    assert.match(nft!, /(^|\/)nft$/);
    assert.match(calls[0]!.input, /^table ip6 t6 \{\}\ndelete table ip6 t6\ntable ip6 t6 \{/);
  });

  it('removes idempotently, and reports nft failures with their output', async () => {
    const ok = recorder();
    await removeClusterTable({ exec: ok.exec, table: 'x1', family: 'ip6' });
    assert.equal(ok.calls[0]!.input, 'table ip6 x1 {}\ndelete table ip6 x1\n');
    const bad = recorder(1);
    await assert.rejects(applyClusterTable(script, { exec: bad.exec }), (e: unknown) => {
      assert.ok(e instanceof NftCommandError);
      assert.equal(e.code, 'USHER_ERR_NFT_COMMAND');
      assert.match(e.message, /apply cluster table: nft exited with code 1: Error: syntax error/);
      return true;
    });
  });

  it('rejects a script without a table header and a bad namespace name', async () => {
    assert.throws(() => clusterTableOf('flush ruleset'), /^InvalidArgumentError: script: /);
    await assert.rejects(applyClusterTable('flush ruleset', recorder()), {
      code: 'USHER_ERR_INVALID_ARGUMENT',
    });
    await assert.rejects(applyClusterTable(script, { ...recorder(), netns: '../x' }), /netns: /);
    await assert.rejects(removeClusterTable({ ...recorder(), family: 'inet' as 'ip' }), /family: /);
  });
});

describe('cluster table in the kernel', { skip: labAvailable('nft') }, () => {
  let lab: Lab;
  let host: Host;
  const nft = (args: string[]) => host.exec('nft', args);

  before(async () => {
    lab = await createLab();
    host = await lab.host('nftc');
  });
  after(() => lab?.close());

  const scripts: Array<[string, ClusterTableOptions]> = [
    ['no ranges', { vip: VIP, ranges: [] }],
    ['one range', { vip: VIP, ranges: [[0, 7999]] }],
    [
      'many ranges, TCP and UDP',
      {
        vip: VIP,
        ports: [80, 8080],
        udpPorts: [53],
        ranges: [
          [0, 0],
          [2, 9],
          [100, 31999],
        ],
      },
    ],
    [
      'IPv6, UDP only, saddr only',
      { vip: 'fd00:7573::100', ports: [], udpPorts: [53, 443], fields: ['saddr'], ranges: [[1, 1]] },
    ],
    [
      'IPv6, sport only, custom everything',
      {
        table: 'c',
        vip: 'fd00::1',
        fields: ['sport'],
        modulus: 2 ** 32 - 1,
        seed: 0xffffffff,
        mark: 0x80000000,
        ranges: [[0, 2 ** 32 - 2]],
      },
    ],
  ];
  for (const [name, options] of scripts)
    it(`nft -c accepts the script: ${name}`, async () => {
      await checkClusterTable(renderClusterTable(options), { netns: host.ns });
      assert.equal((await nft(['list', 'ruleset'])).stdout.trim(), '', 'check mode applied nothing');
    });

  it('applies, replaces (the table exists once, with the new ranges) and removes', async () => {
    const opts = { netns: host.ns };
    await applyClusterTable(renderClusterTable({ vip: VIP, ranges: [[0, 7999]] }), opts);
    await applyClusterTable(
      renderClusterTable({
        vip: VIP,
        ranges: [
          [8000, 9999],
          [12000, 12000],
        ],
      }),
      opts,
    );
    const listed = (await nft(['list', 'table', 'ip', 'usher_cluster'])).stdout;
    assert.match(listed, /vmap \{ 8000-9999 : jump mine, 12000 : jump mine \}/);
    assert.equal((await nft(['list', 'tables'])).stdout.trim(), 'table ip usher_cluster');
    await assert.rejects(
      applyClusterTable(renderClusterTable({ vip: VIP, ranges: [[0, 1]] }).replace('drop', 'dorp'), opts),
      NftCommandError,
    );
    assert.match(
      (await nft(['list', 'table', 'ip', 'usher_cluster'])).stdout,
      /8000-9999/,
      'failed apply changed nothing',
    );
    await removeClusterTable(opts);
    await removeClusterTable(opts);
    assert.equal((await nft(['list', 'ruleset'])).stdout.trim(), '');
  });
});
