import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build } from 'esbuild';
import { seededRandom } from '../../src/core/hash.js';
import { type HealthState, type LoadReport, type MemberView, makeMember } from '../../src/core/model.js';
import { createPolicy } from '../../src/core/policy/index.js';
import {
  type ListDocument,
  type ListEntry,
  listToViews,
  parseListDocument,
  streamUrlOf,
  toListDocument,
} from '../../src/list/entry.js';
import { renderList } from '../../src/list/formats.js';

const load = (users: number): LoadReport => ({
  users,
  connections: users + 1,
  inFlight: 2,
  cpu: 0.5,
  custom: {},
  timestamp: 5,
});

const HOSTILE = `a"b'c<d>&e\u2028f\u2029g</script><script>x()</script>\tt\nn\rr\\-`;

function views(): MemberView[] {
  return [
    {
      member: makeMember({
        id: 'live-2',
        pool: 'live',
        addresses: ['fd00::2'],
        ports: { main: 9000, stream: 9302 },
        labels: { capacity: '250' },
        group: 1,
        weight: 2,
        site: 'eu',
      }),
      health: 'suspect',
      load: load(40),
    },
    {
      member: makeMember({ id: 'live-1', pool: 'live', ports: { main: 9301 }, labels: { streamPath: 'ws' } }),
      health: 'up',
      load: load(12),
    },
    {
      member: makeMember({
        id: HOSTILE,
        pool: 'live',
        labels: { [HOSTILE]: HOSTILE, url: `ws://h/${HOSTILE}` },
      }),
      health: 'draining',
    },
    { member: makeMember({ id: 'live-3', pool: 'live', ports: { main: 1 } }), health: 'down' },
    { member: makeMember({ id: 'other-1', pool: 'other' }), health: 'up', load: load(1) },
  ];
}

const doc = (): ListDocument => toListDocument('live', views(), 42, 1_700_000_000_000);

/** Sets (or, with undefined, deletes) a field of one server of a raw document and returns the document. */
function set<D extends { servers: Record<string, unknown>[] }>(
  d: D,
  i: number,
  key: string,
  value: unknown,
): D {
  if (value === undefined) delete d.servers[i]![key];
  else d.servers[i]![key] = value;
  return d;
}

describe('list entries', () => {
  test('toListDocument: only the pool, sorted by id, users, capacity, url rule, labels', () => {
    const d = toListDocument('live', views(), 42, 1_700_000_000_000, (m) =>
      m.id === 'live-3' ? 'tcp://x:1' : undefined,
    );
    assert.deepEqual(
      { version: d.version, pool: d.pool, revision: d.revision, generatedAt: d.generatedAt },
      { version: 1, pool: 'live', revision: 42, generatedAt: 1_700_000_000_000 },
    );
    assert.deepEqual(
      d.servers.map((s) => s.id),
      [HOSTILE, 'live-1', 'live-2', 'live-3'],
    );
    const [hostile, one, two, three] = d.servers as ListEntry[];
    assert.deepEqual(one, {
      id: 'live-1',
      status: 'up',
      users: 12,
      capacity: 100,
      group: 0,
      weight: 1,
      site: 'local',
      address: '127.0.0.1',
      url: 'ws://127.0.0.1:9301/ws',
      labels: { streamPath: 'ws' },
    });
    assert.equal(two!.url, 'ws://[fd00::2]:9302/usher/stream');
    assert.equal(two!.capacity, 250, 'the capacity label wins over weight × 100');
    assert.equal(two!.status, 'suspect');
    assert.equal(hostile!.users, 0, 'no load report reads as 0 users');
    assert.equal(hostile!.url, `ws://h/${HOSTILE}`, 'the url label is used as it is');
    assert.equal(three!.url, 'tcp://x:1', 'urlOf supplies what the rule does not know');
    assert.equal(doc().servers[3]!.url, undefined);
    assert.equal('url' in doc().servers[3]!, false, 'no url: the field is absent');
    const blank = toListDocument('live', views(), 1, 1, () => '');
    assert.equal('url' in blank.servers[3]!, false, 'an empty url from urlOf counts as none');
    assert.deepEqual(parseListDocument(JSON.parse(JSON.stringify(blank))), blank);
  });

  test('streamUrlOf', () => {
    const cases: [Parameters<typeof makeMember>[0], string | undefined][] = [
      [{ id: 'a', ports: { main: 80 } }, undefined],
      [{ id: 'a', ports: { stream: 81 } }, 'ws://127.0.0.1:81/usher/stream'],
      [{ id: 'a', ports: { main: 80 }, labels: { streamPath: '/s' } }, 'ws://127.0.0.1:80/s'],
      [{ id: 'a', addresses: ['::1'], ports: { stream: 7 } }, 'ws://[::1]:7/usher/stream'],
      [{ id: 'a', addresses: ['h.example'], ports: { stream: 7 } }, 'ws://h.example:7/usher/stream'],
      [{ id: 'a', ports: {}, labels: { streamPath: '/s' } }, undefined],
      [{ id: 'a', addresses: [], ports: { stream: 7 } }, undefined],
      [{ id: 'a', ports: { stream: 7 }, labels: { url: 'wss://x/y' } }, 'wss://x/y'],
    ];
    for (const [partial, expected] of cases)
      assert.equal(streamUrlOf(makeMember(partial)), expected, JSON.stringify(partial));
  });

  test('parseListDocument accepts what toListDocument produces, through JSON', () => {
    const d = doc();
    assert.deepEqual(parseListDocument(JSON.parse(JSON.stringify(d))), d);
    assert.deepEqual(parseListDocument(JSON.parse(renderList(d, 'json'))), d);
    const empty = toListDocument('none', [], 0, 0);
    assert.deepEqual(parseListDocument(JSON.parse(JSON.stringify(empty))), empty);
  });

  test('parseListDocument rejects malformed documents, naming the field', () => {
    type Raw = Record<string, unknown> & { servers: Record<string, unknown>[] };
    const cases: [string, (d: Raw) => unknown, RegExp][] = [
      ['not an object', () => [], /\(root\): expected an object, got an array/],
      ['version', (d) => ({ ...d, version: 2 }), /version: expected 1, got 2/],
      ['no version', (d) => ({ ...d, version: undefined }), /version: expected 1, got undefined/],
      ['pool', (d) => ({ ...d, pool: '' }), /pool: expected a non-empty string, got ""/],
      ['revision', (d) => ({ ...d, revision: 1.5 }), /revision: expected an integer >= 0, got 1.5/],
      ['generatedAt', (d) => ({ ...d, generatedAt: '1' }), /generatedAt: expected a finite number >= 0/],
      ['servers', (d) => ({ ...d, servers: {} }), /servers: expected an array, got object/],
      ['entry', (d) => ({ ...d, servers: [null] }), /servers\[0\]: expected an object, got null/],
      [
        'status',
        (d) => set(d, 1, 'status', 'gone'),
        /servers\[1\]\.status: expected one of up, suspect, down, draining, got "gone"/,
      ],
      [
        'users',
        (d) => set(d, 2, 'users', '12'),
        /servers\[2\]\.users: expected a finite number >= 0, got "12"/,
      ],
      [
        'capacity',
        (d) => set(d, 2, 'capacity', -1),
        /servers\[2\]\.capacity: expected a finite number >= 0, got -1/,
      ],
      ['group', (d) => set(d, 0, 'group', 0.5), /servers\[0\]\.group: expected an integer >= 0, got 0.5/],
      [
        'id',
        (d) => set(d, 0, 'id', undefined),
        /servers\[0\]\.id: expected a non-empty string, got undefined/,
      ],
      ['address', (d) => set(d, 0, 'address', 1), /servers\[0\]\.address: expected a string, got 1/],
      ['url', (d) => set(d, 1, 'url', ''), /servers\[1\]\.url: expected a non-empty string, got ""/],
      [
        'labels',
        (d) => set(d, 1, 'labels', { zone: 1 }),
        /servers\[1\]\.labels\.zone: expected a string, got 1/,
      ],
      [
        'no labels',
        (d) => set(d, 1, 'labels', undefined),
        /servers\[1\]\.labels: expected an object, got undefined/,
      ],
      ['duplicate', (d) => set(d, 2, 'id', 'live-1'), /servers\[2\]\.id: duplicate id "live-1"/],
    ];
    for (const [name, mutate, message] of cases) {
      const input = mutate(JSON.parse(JSON.stringify(doc())) as Raw);
      assert.throws(
        () => parseListDocument(input),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'USHER_ERR_LIST_INVALID', name);
          assert.match(e.message, message, name);
          return true;
        },
      );
    }
  });

  test('parseListDocument keeps a label named __proto__ as a label and ignores unknown fields', () => {
    const raw = JSON.parse(
      '{"version":1,"pool":"p","revision":1,"generatedAt":2,"extra":true,"servers":[{"id":"a","status":"up","users":0,"capacity":1,"group":0,"weight":1,"site":"s","address":"","labels":{"__proto__":"x"},"future":1}]}',
    );
    const d = parseListDocument(raw);
    assert.equal(Object.getPrototypeOf(d.servers[0]!.labels), Object.prototype);
    assert.deepEqual(Object.entries(d.servers[0]!.labels), [['__proto__', 'x']]);
    assert.equal('extra' in d, false);
    assert.equal('future' in d.servers[0]!, false);
  });

  test('listToViews feeds the core policies; priority-load picks only up members', () => {
    const health: HealthState[] = ['up', 'down', 'up', 'draining', 'suspect', 'up'];
    const members = health.map((h, i) => ({
      member: makeMember({
        id: `m${i}`,
        pool: 'p',
        ports: { stream: 9000 + i },
        labels: { capacity: String(10 * (i + 1)) },
      }),
      health: h,
      load: load(i * 3),
    }));
    const v = listToViews(toListDocument('p', members, 1, 77));
    assert.deepEqual(v[2], {
      member: {
        id: 'm2',
        pool: 'p',
        addresses: ['127.0.0.1'],
        ports: { main: 9002 },
        site: 'local',
        group: 0,
        weight: 30,
        labels: { capacity: '30' },
      },
      health: 'up',
      load: { users: 6, connections: 6, inFlight: 0, cpu: 0, custom: {}, timestamp: 77 },
    });
    const up = new Set(['m0', 'm2', 'm5']);
    const policy = createPolicy('priority-load', { metric: 'users', random: seededRandom(7) });
    const picked = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const m = policy.pick({ members: v });
      assert.ok(m && up.has(m.id), `picked ${m?.id}`);
      picked.add(m.id);
    }
    assert.deepEqual([...picked].sort(), ['m0', 'm2', 'm5'], 'every up member is chosen at some point');
    for (const name of ['p2c', 'weighted-random'] as const) {
      const p = createPolicy(
        name,
        name === 'p2c' ? { metric: 'users', random: seededRandom(1) } : { random: seededRandom(1) },
      );
      for (let i = 0; i < 100; i++) assert.ok(up.has(p.pick({ members: v })!.id), name);
    }
    assert.deepEqual(
      listToViews(parseListDocument({ ...JSON.parse(renderList(toListDocument('p', [], 0, 0), 'json')) })),
      [],
    );
  });

  test('listToViews: url port, default ports by scheme, no url no port', () => {
    const d = parseListDocument({
      version: 1,
      pool: 'p',
      revision: 0,
      generatedAt: 0,
      servers: [
        {
          id: 'a',
          status: 'up',
          users: 0,
          capacity: 1,
          group: 0,
          weight: 1,
          site: '',
          address: 'h',
          url: 'wss://h/x',
          labels: {},
        },
        {
          id: 'b',
          status: 'up',
          users: 0,
          capacity: 1,
          group: 0,
          weight: 1,
          site: '',
          address: '',
          labels: {},
        },
      ],
    });
    const [a, b] = listToViews(d);
    assert.deepEqual(a!.member.ports, { main: 443 });
    assert.deepEqual(b!.member.ports, {});
    assert.deepEqual(b!.member.addresses, []);
  });

  test('entry.ts and formats.ts bundle for browsers with no Node-only import', async () => {
    const result = await build({
      entryPoints: ['src/list/entry.ts', 'src/list/formats.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      outdir: 'out',
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    const nodeOnly = inputs.filter((i) => i.startsWith('node:') || i.includes('node_modules'));
    assert.deepEqual(nodeOnly, []);
    assert.ok(inputs.some((i) => i.endsWith('src/list/entry.ts')));
  });
});
