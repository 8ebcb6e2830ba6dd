import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import vm from 'node:vm';
import { XMLParser } from 'fast-xml-parser';
import { type MemberView, makeMember } from '../../src/core/model.js';
import { type ListDocument, type ListEntry, toListDocument } from '../../src/list/entry.js';
import {
  escapeXmlAttribute,
  isValidCallback,
  LIST_CONTENT_TYPES,
  type ListFormat,
  negotiate,
  renderList,
  TEXT_COLUMNS,
} from '../../src/list/formats.js';

const HOSTILE = `a"b'c<d>&e\u2028f\u2029g</script><!--<script>x()</script>\tt\nn\rr\\-`;

function sample(): ListDocument {
  const views: MemberView[] = [
    {
      member: makeMember({ id: 'live-1', pool: 'live', ports: { stream: 9301 }, labels: { zone: 'a' } }),
      health: 'up',
      load: { users: 12, connections: 0, inFlight: 0, cpu: 0, custom: {}, timestamp: 1 },
    },
    {
      member: makeMember({
        id: 'live-2',
        pool: 'live',
        addresses: ['fd00::2'],
        weight: 2.5,
        group: 1,
        site: 'eu',
      }),
      health: 'down',
    },
    {
      member: makeMember({
        id: HOSTILE,
        pool: HOSTILE,
        site: HOSTILE,
        labels: { [HOSTILE]: HOSTILE, url: `ws://h/${HOSTILE}` },
      }),
      health: 'draining',
    },
    { member: makeMember({ id: '-', pool: HOSTILE, labels: { url: '-' } }), health: 'suspect' },
  ];
  const live = toListDocument('live', views, 42, 1_700_000_000_123);
  const hostile = toListDocument(HOSTILE, views, 43, 1_700_000_000_456);
  return { ...live, servers: [...live.servers, ...hostile.servers] };
}

// ---- parsers written from docs/protocols/list.md ----

function unescapeText(field: string): string {
  const map: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', '-': '-' };
  return field.replace(/\\(.)/g, (_, c: string) => {
    const v = map[c];
    assert.ok(v !== undefined, `unknown escape \\${c}`);
    return v;
  });
}

function parseText(body: string) {
  assert.ok(body.endsWith('\n'), 'every line ends with LF');
  const lines = body.slice(0, -1).split('\n');
  const header = lines.shift()!;
  assert.ok(header.startsWith('#'), 'the first line is the header comment');
  const [magic, ...pairs] = header.split('\t');
  assert.equal(magic, '#usher-list');
  const meta = Object.fromEntries(
    pairs.map((p) => [p.slice(0, p.indexOf('=')), unescapeText(p.slice(p.indexOf('=') + 1))]),
  );
  const columns = meta.columns!.split(',');
  const rows = lines
    .filter((l) => !l.startsWith('#'))
    .map((line) => {
      const cells = line.split('\t');
      assert.equal(cells.length, columns.length, `one cell per column in ${JSON.stringify(line)}`);
      const row = Object.fromEntries(columns.map((c, i) => [c, cells[i]!]));
      return {
        id: unescapeText(row.id!),
        status: row.status!,
        users: Number(row.users),
        capacity: Number(row.capacity),
        group: Number(row.group),
        url: row.url === '-' ? undefined : unescapeText(row.url!),
      };
    });
  return { meta, columns, rows };
}

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // fast-xml-parser leaves character references (&#9;) alone and trims values unless told.
  htmlEntities: true,
  trimValues: false,
  isArray: (name) => name === 'server' || name === 'label',
});

function fromXml(body: string): ListDocument {
  const root = xmlParser.parse(body) as { '?xml': Record<string, string>; servers: Record<string, unknown> };
  assert.deepEqual(root['?xml'], { version: '1.0', encoding: 'UTF-8' });
  const s = root.servers as Record<string, string> & { server?: Record<string, unknown>[] };
  return {
    version: Number(s.version) as 1,
    pool: s.pool!,
    revision: Number(s.revision),
    generatedAt: Number(s.generatedAt),
    servers: (s.server ?? []).map((e) => {
      const a = e as Record<string, string> & { label?: { name: string; value: string }[] };
      const entry: ListEntry = {
        id: a.id!,
        status: a.status as ListEntry['status'],
        users: Number(a.users),
        capacity: Number(a.capacity),
        group: Number(a.group),
        weight: Number(a.weight),
        site: a.site!,
        address: a.address!,
        ...(a.url === undefined ? {} : { url: a.url }),
        labels: Object.fromEntries((a.label ?? []).map((l) => [l.name, l.value])),
      };
      return entry;
    }),
  };
}

describe('list formats', () => {
  test('json parses back to the document', () => {
    const d = sample();
    const body = renderList(d, 'json');
    assert.deepEqual(JSON.parse(body), d);
  });

  test('text: header names columns, pool, revision; one escaped line per server', () => {
    const d = sample();
    const body = renderList(d, 'text');
    const { meta, columns, rows } = parseText(body);
    assert.deepEqual(columns, [...TEXT_COLUMNS]);
    assert.deepEqual(meta, {
      version: '1',
      pool: 'live',
      revision: '42',
      generatedAt: '1700000000123',
      columns: 'id,status,users,capacity,group,url',
    });
    assert.deepEqual(
      rows,
      d.servers.map((s) => ({
        id: s.id,
        status: s.status,
        users: s.users,
        capacity: s.capacity,
        group: s.group,
        url: s.url,
      })),
    );
    assert.equal(body.split('\n').length, d.servers.length + 2, 'no value splits a line');
    const hostilePool = parseText(renderList({ ...d, pool: HOSTILE }, 'text'));
    assert.equal(hostilePool.meta.pool, HOSTILE);
    assert.deepEqual(parseText(renderList({ ...d, servers: [] }, 'text')).rows, []);
  });

  test('xml parses back to the document with a real parser, hostile values included', () => {
    const d = sample();
    const body = renderList(d, 'xml');
    assert.ok(body.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'));
    assert.deepEqual(fromXml(body), d);
    assert.ok(!body.includes('</script>'), 'markup in values is escaped');
    const empty = renderList({ ...d, servers: [] }, 'xml');
    assert.deepEqual(fromXml(empty).servers, []);
  });

  test('xml: characters XML 1.0 cannot carry become U+FFFD', () => {
    assert.equal(escapeXmlAttribute('a\u0000b\u001fc\uD800d\uFFFEe😀'), 'a\uFFFDb\uFFFDc\uFFFDd\uFFFDe😀');
    const d = sample();
    const body = renderList({ ...d, servers: [{ ...d.servers[0]!, id: 'x\u0001y' }] }, 'xml');
    assert.equal(fromXml(body).servers[0]!.id, 'x\uFFFDy');
  });

  test('js runs in a VM and yields the document; safe to inline in <script>', () => {
    const d = sample();
    const body = renderList(d, 'js');
    assert.match(body, /^var usherList = \{/);
    for (const bad of ['</', '<!--', '\u2028', '\u2029'])
      assert.ok(!body.includes(bad), `no raw ${JSON.stringify(bad)}`);
    const ctx: { usherList?: unknown } = {};
    vm.runInNewContext(body, ctx);
    assert.deepEqual(JSON.parse(JSON.stringify(ctx.usherList)), d);
  });

  test('js with a callback calls it with the document', () => {
    const d = sample();
    const got: unknown[] = [];
    const ctx = { app: { lists: { take: (x: unknown) => got.push(x) } } };
    const body = renderList(d, 'js', 'app.lists.take');
    assert.match(body, /^app\.lists\.take\(\{/);
    assert.ok(body.endsWith('});\n'));
    vm.runInNewContext(body, ctx);
    assert.equal(got.length, 1);
    assert.deepEqual(JSON.parse(JSON.stringify(got[0])), d);
    assert.throws(() => renderList(d, 'js', 'alert(1)//'), { code: 'USHER_ERR_INVALID_ARGUMENT' });
  });

  test('callback names: dotted identifier paths of at most 64 characters', () => {
    for (const ok of ['cb', '$', '_x1', 'a.b.$c', 'jQuery123_456', 'a'.repeat(64)])
      assert.ok(isValidCallback(ok), ok);
    for (const bad of [
      '',
      '1a',
      'a..b',
      'a.',
      '.a',
      'a-b',
      'a[0]',
      'a b',
      'alert(1)',
      'a;b',
      'a'.repeat(65),
      'é',
    ])
      assert.ok(!isValidCallback(bad), bad);
  });

  test('content types carry a charset', () => {
    for (const format of ['json', 'text', 'xml', 'js'] as ListFormat[])
      assert.match(LIST_CONTENT_TYPES[format], /; charset=utf-8$/);
  });
});

describe('negotiation', () => {
  test('Accept header table', () => {
    const table: [string | undefined, ListFormat | 406][] = [
      [undefined, 'json'],
      ['', 'json'],
      ['*/*', 'json'],
      ['application/json', 'json'],
      ['text/plain', 'text'],
      ['application/xml', 'xml'],
      ['text/xml', 'xml'],
      ['text/javascript', 'js'],
      ['application/javascript', 'js'],
      ['TEXT/PLAIN', 'text'],
      ['text/*', 'text'],
      ['text/plain;q=0.5, application/xml;q=0.9', 'xml'],
      ['application/json;q=0.1, text/plain;q=0.2', 'text'],
      ['application/json;q=0, */*', 'text'],
      ['application/json;q=0.5, */*;q=0.4', 'json'],
      ['text/plain, application/json', 'text'],
      ['application/json, text/plain', 'json'],
      ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'xml'],
      ['text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2', 'json'],
      ['text/*;q=0.3, text/javascript;q=0.7', 'js'],
      ['text/html', 406],
      ['image/png, text/html;q=0.9', 406],
      ['application/json;q=0', 406],
      ['*/*;q=0', 406],
    ];
    for (const [accept, expected] of table) {
      const n = negotiate(accept, null);
      if (expected === 406) {
        assert.equal(n.ok, false, String(accept));
        if (!n.ok) {
          assert.equal(n.status, 406, String(accept));
          assert.match(n.message, /application\/json/);
        }
      } else assert.deepEqual(n, { ok: true, format: expected }, String(accept));
    }
  });

  test('?format= wins over Accept; anything else is a 400 listing the valid values', () => {
    assert.deepEqual(negotiate('application/json', 'xml'), { ok: true, format: 'xml' });
    assert.deepEqual(negotiate('text/html', 'text'), { ok: true, format: 'text' });
    assert.deepEqual(negotiate(undefined, 'JS'), { ok: true, format: 'js' });
    for (const bad of ['', 'yaml', 'html', 'json ']) {
      const n = negotiate('*/*', bad);
      assert.equal(n.ok, false, bad);
      if (!n.ok) {
        assert.equal(n.status, 400);
        assert.match(n.message, /expected one of json, text, xml, js/);
      }
    }
  });
});
