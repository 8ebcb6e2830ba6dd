import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import vm from 'node:vm';
import { XMLParser } from 'fast-xml-parser';
import { Metrics } from '../../src/admin/metrics.js';
import { type LoadReport, makeMember } from '../../src/core/model.js';
import { parseListDocument } from '../../src/list/entry.js';
import { ListService, type ListServiceOptions } from '../../src/list/list-service.js';
import { MemoryRegistry } from '../../src/registry/memory.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (no keep-alive, so closing the server never waits). */
function http(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, base),
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const load = (users: number): LoadReport => ({
  users,
  connections: users,
  inFlight: 0,
  cpu: 0,
  custom: {},
  timestamp: 1,
});

async function seed(registry: MemoryRegistry): Promise<void> {
  await registry.register(makeMember({ id: 'live-1', pool: 'live', ports: { main: 9000, stream: 9301 } }));
  await registry.register(
    makeMember({
      id: 'live-2',
      pool: 'live',
      addresses: ['::1'],
      labels: { capacity: '50', streamPath: '/s' },
      ports: { main: 9002 },
    }),
    { health: 'suspect' },
  );
  await registry.register(makeMember({ id: 'test-1', pool: 'test' }));
  await registry.register(makeMember({ id: 'web-1', pool: 'web' }));
  await registry.report('live-1', load(12));
  await registry.report('test-1', load(3));
}

/** A seeded registry and a listening service; both closed when the test ends. */
async function start(t: TestContext, options: Partial<ListServiceOptions> = {}) {
  const registry = new MemoryRegistry();
  t.after(() => registry.close());
  await seed(registry);
  const service = new ListService({ registry, pools: ['live', 'test', 'empty'], ...options });
  t.after(() => service.close());
  const listener = await service.listen({ host: '127.0.0.1', port: 0 });
  return { registry, service, base: listener.url, listener };
}

describe('list service over HTTP', () => {
  test('GET /usher/list serves the default pool as JSON with cache and CORS headers', async (t) => {
    const { base, registry } = await start(t);
    const r = await http(base, '/usher/list');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'public, max-age=1');
    assert.equal(r.headers.vary, 'Accept');
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.match(r.headers['access-control-expose-headers'] ?? '', /ETag/);
    assert.match(r.headers.etag ?? '', /^"[A-Za-z0-9_-]+"$/, 'a strong ETag');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    const doc = parseListDocument(JSON.parse(r.body));
    assert.equal(doc.pool, 'live');
    assert.equal(doc.revision, (await registry.snapshot()).revision);
    assert.deepEqual(
      doc.servers.map((s) => [s.id, s.status, s.users, s.capacity, s.url]),
      [
        ['live-1', 'up', 12, 100, 'ws://127.0.0.1:9301/usher/stream'],
        ['live-2', 'suspect', 0, 50, 'ws://[::1]:9002/s'],
      ],
    );
    const test2 = parseListDocument(JSON.parse((await http(base, '/usher/list/test')).body));
    assert.deepEqual(
      test2.servers.map((s) => [s.id, s.users]),
      [['test-1', 3]],
    );
    const empty = await http(base, '/usher/list/empty/');
    assert.equal(empty.status, 200);
    assert.deepEqual(parseListDocument(JSON.parse(empty.body)).servers, []);
  });

  test('ETag stays while nothing changes, changes after a report; If-None-Match gives 304', async (t) => {
    const { base, registry, service } = await start(t, { cacheMaxAgeSec: 5 });
    const first = await http(base, '/usher/list');
    const builds = service.builds;
    const again = await http(base, '/usher/list');
    assert.equal(again.headers.etag, first.headers.etag);
    assert.equal(again.body, first.body);
    assert.equal(service.builds, builds, 'no rebuild per request');
    assert.equal(first.headers['cache-control'], 'public, max-age=5');

    const etag = first.headers.etag!;
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await http(base, '/usher/list', { headers: { 'If-None-Match': inm } });
      assert.equal(r.status, 304, inm);
      assert.equal(r.body, '');
      assert.equal(r.headers.etag, etag);
      assert.equal(r.headers['access-control-allow-origin'], '*');
    }

    await registry.report('test-1', load(9));
    await registry.assign('some/key', 1);
    const otherPool = await http(base, '/usher/list', { headers: { 'If-None-Match': etag } });
    assert.equal(otherPool.status, 304, 'changes to another pool or to assignments keep the ETag');

    await registry.report('live-1', load(13));
    const changed = await http(base, '/usher/list', { headers: { 'If-None-Match': etag } });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.etag, etag);
    assert.equal(parseListDocument(JSON.parse(changed.body)).servers[0]!.users, 13);

    await registry.setHealth('live-2', 'down', 'test');
    const down = await http(base, '/usher/list');
    assert.notEqual(down.headers.etag, changed.headers.etag);
    assert.equal(parseListDocument(JSON.parse(down.body)).servers[1]!.status, 'down');

    await registry.deregister('live-1');
    const gone = parseListDocument(JSON.parse((await http(base, '/usher/list')).body));
    assert.deepEqual(
      gone.servers.map((s) => s.id),
      ['live-2'],
    );
    await registry.register(makeMember({ id: 'test-1', pool: 'live' }));
    const moved = parseListDocument(JSON.parse((await http(base, '/usher/list')).body));
    assert.deepEqual(
      moved.servers.map((s) => s.id),
      ['live-2', 'test-1'],
      'a member that moves pools shows up in its new pool',
    );
    const left = parseListDocument(JSON.parse((await http(base, '/usher/list/test')).body));
    assert.deepEqual(left.servers, [], '...and leaves the old one');
  });

  test('every format by ?format= and by Accept, each with its own ETag', async (t) => {
    const { base } = await start(t);
    const xml = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (n) => n === 'server',
    });
    const etags = new Set<string>();
    const cases: [string, Record<string, string>, RegExp][] = [
      ['/usher/list?format=text', {}, /^text\/plain; charset=utf-8$/],
      ['/usher/list', { Accept: 'text/plain' }, /^text\/plain; charset=utf-8$/],
      ['/usher/list?format=xml', { Accept: 'application/json' }, /^application\/xml; charset=utf-8$/],
      ['/usher/list', { Accept: 'text/xml;q=0.9, application/json;q=0.1' }, /^application\/xml/],
      ['/usher/list?format=js', {}, /^text\/javascript; charset=utf-8$/],
      ['/usher/list', { Accept: 'application/javascript' }, /^text\/javascript/],
      ['/usher/list?format=json', { Accept: 'text/plain' }, /^application\/json/],
    ];
    for (const [path, headers, type] of cases) {
      const r = await http(base, path, { headers });
      assert.equal(r.status, 200, path);
      assert.match(String(r.headers['content-type']), type, `${path} ${JSON.stringify(headers)}`);
      etags.add(r.headers.etag!);
      if (type.source.includes('xml')) {
        const s = xml.parse(r.body).servers;
        assert.deepEqual(
          s.server.map((e: { id: string; users: string }) => [e.id, e.users]),
          [
            ['live-1', '12'],
            ['live-2', '0'],
          ],
        );
      }
      if (type.source.includes('javascript')) {
        const ctx: { usherList?: { servers: { id: string }[] } } = {};
        vm.runInNewContext(r.body, ctx);
        assert.equal(ctx.usherList!.servers[0]!.id, 'live-1');
      }
      if (type.source.includes('plain'))
        assert.match(r.body, /^#usher-list\t.*\nlive-1\tup\t12\t100\t0\tws:/);
    }
    assert.equal(etags.size, 4, 'one ETag per format');

    const got: unknown[] = [];
    const jsonp = await http(base, '/usher/list?callback=ui.take');
    assert.match(String(jsonp.headers['content-type']), /^text\/javascript/, 'a callback alone asks for js');
    vm.runInNewContext(jsonp.body, { ui: { take: (d: unknown) => got.push(d) } });
    assert.equal((got[0] as { pool: string }).pool, 'live');
  });

  test('HEAD has the GET headers and no body', async (t) => {
    const { base } = await start(t);
    const get = await http(base, '/usher/list?format=xml');
    const head = await http(base, '/usher/list?format=xml', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    for (const h of [
      'etag',
      'content-type',
      'content-length',
      'cache-control',
      'vary',
      'access-control-allow-origin',
    ])
      assert.equal(head.headers[h], get.headers[h], h);
  });

  test('errors: unknown pool 404, other methods 405, bad format 400, unacceptable 406, bad callback 400', async (t) => {
    const { base, service } = await start(t);
    const unknown = await http(base, '/usher/list/nope');
    assert.equal(unknown.status, 404);
    const body = JSON.parse(unknown.body) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'USHER_ERR_NOT_FOUND');
    assert.match(body.error.message, /"nope".*known pools: live, test, empty/);
    assert.equal(unknown.headers['access-control-allow-origin'], '*');
    assert.equal((await http(base, '/usher/list/web')).status, 404, 'a pool that exists but is not listed');
    assert.equal((await http(base, '/usher/list/live/x')).status, 404);

    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await http(base, '/usher/list', { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD, OPTIONS');
      assert.equal(JSON.parse(r.body).error.code, 'USHER_ERR_METHOD_NOT_ALLOWED');
    }

    const badFormat = await http(base, '/usher/list?format=yaml');
    assert.equal(badFormat.status, 400);
    assert.match(JSON.parse(badFormat.body).error.message, /expected one of json, text, xml, js, got "yaml"/);

    const notAcceptable = await http(base, '/usher/list', { headers: { Accept: 'text/html' } });
    assert.equal(notAcceptable.status, 406);
    assert.match(JSON.parse(notAcceptable.body).error.message, /application\/json/);

    const badCallback = await http(
      base,
      `/usher/list?format=js&callback=${encodeURIComponent('alert(1)//')}`,
    );
    assert.equal(badCallback.status, 400);
    assert.match(JSON.parse(badCallback.body).error.message, /callback/);

    const other = await http(base, '/usher/listing');
    assert.equal(other.status, 404, 'paths that are not the list are not its own');

    const counts = service.requestCounts();
    assert.equal(counts.none?.['404'], 3, 'the fallback 404 of listen() is not a list request');
    assert.equal(counts.none?.['400'], 1);
    assert.equal(counts.none?.['405'], 3);
    assert.equal(counts.none?.['406'], 1);
    assert.equal(counts.js?.['400'], 1);
  });

  test('OPTIONS preflight allows cross-origin GET with If-None-Match', async (t) => {
    const { base } = await start(t);
    const r = await http(base, '/usher/list/test', {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://game.example',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'if-none-match',
      },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.match(String(r.headers['access-control-allow-methods']), /\bGET\b/);
    assert.match(String(r.headers['access-control-allow-headers']), /If-None-Match/i);
  });

  test('mounted inside another server: handle() returns false for other paths', async (t) => {
    const registry = new MemoryRegistry();
    t.after(() => registry.close());
    await seed(registry);
    const service = new ListService({ registry, pools: ['test'] });
    t.after(() => service.close());
    const server = createServer((req, res) => {
      if (service.handle(req, res)) return;
      res.writeHead(418).end('mine');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await http(base, '/other')).status, 418);
    assert.equal((await http(base, '/usher/listx')).status, 418);
    const r = await http(base, '/usher/list');
    assert.equal(r.status, 200);
    assert.equal(parseListDocument(JSON.parse(r.body)).pool, 'test', 'the first pool is the default');
  });

  test('counts requests in prom-client metrics when given', async (t) => {
    const metrics = new Metrics({ defaultMetrics: false });
    const { base } = await start(t, { metrics });
    await http(base, '/usher/list');
    const etag = (await http(base, '/usher/list')).headers.etag!;
    await http(base, '/usher/list', { headers: { 'If-None-Match': etag } });
    await http(base, '/usher/list?format=text');
    const text = await metrics.text();
    assert.match(text, /^usher_list_requests_total\{format="json",status="200"\} 2$/m);
    assert.match(text, /^usher_list_requests_total\{format="json",status="304"\} 1$/m);
    assert.match(text, /^usher_list_requests_total\{format="text",status="200"\} 1$/m);
  });

  test('a registry that fails answers 503, and close() stops the listener', async (t) => {
    const registry = new MemoryRegistry();
    await seed(registry);
    const service = new ListService({ registry, pools: ['live'] });
    t.after(() => service.close());
    const listener = await service.listen();
    await registry.close();
    const r = await http(listener.url, '/usher/list');
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).error.code, 'USHER_ERR_REGISTRY');
    await service.close();
    await assert.rejects(http(listener.url, '/usher/list'), { code: 'ECONNREFUSED' });
  });

  test('options are checked', () => {
    const registry = new MemoryRegistry();
    try {
      assert.throws(() => new ListService({ registry, pools: [] }), /pools: expected at least one/);
      assert.throws(() => new ListService({ registry, pools: ['a', 'a'] }), /pools\[1\]: duplicate pool "a"/);
      assert.throws(
        () => new ListService({ registry, pools: ['a'], cacheMaxAgeSec: -1 }),
        /cacheMaxAgeSec: expected an integer >= 0, got -1/,
      );
    } finally {
      void registry.close();
    }
  });
});
