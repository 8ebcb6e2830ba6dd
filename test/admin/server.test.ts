import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { AdminState } from '../../src/admin/state.js';
import { makeMember } from '../../src/core/model.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import type { RegistrySnapshot } from '../../src/registry/registry.js';
import { auth, eventually, http, sse, startAdmin, TOKEN } from './helpers.js';

interface ErrorReply {
  error: { code: string; message: string; issues?: { path: string; message: string }[] };
}

describe('admin server: reads', () => {
  test('GET /healthz answers ok', async (t) => {
    const { server } = await startAdmin(t);
    const r = await http(server.url, '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok');
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.url, `http://127.0.0.1:${server.port}`);
  });

  test('GET /metrics exposes usher_ metrics, member gauges per pool and health, and request counts', async (t) => {
    const { server, registry } = await startAdmin(t);
    await http(server.url, '/no-such-page');
    let text = (await http(server.url, '/metrics')).text;
    assert.match(
      text,
      /^usher_process_cpu_user_seconds_total \d/m,
      'process metrics carry the usher_ prefix',
    );
    assert.match(text, /^usher_pool_members\{pool="web",health="up"\} 2$/m);
    assert.match(text, /^usher_pool_members\{pool="web",health="suspect"\} 1$/m);
    assert.match(text, /^usher_pool_members\{pool="chat",health="up"\} 1$/m);
    assert.match(
      text,
      /^usher_pool_members\{pool="empty",health="up"\} 0$/m,
      'declared empty pools are shown',
    );
    assert.match(text, /^usher_pool_users\{pool="web"\} 12$/m);
    assert.match(text, /^usher_admin_requests_total\{route="unmatched",method="GET",status="404"\} 1$/m);
    const names = text.split('\n').filter((l) => /^[a-z]/.test(l));
    assert.ok(names.length > 0 && names.every((l) => l.startsWith('usher_')), 'every series is usher_*');

    await registry.setHealth('web-1', 'down', 'probe timeout');
    text = (await http(server.url, '/metrics')).text;
    assert.match(text, /^usher_pool_members\{pool="web",health="up"\} 1$/m);
    assert.match(text, /^usher_pool_members\{pool="web",health="down"\} 1$/m);
    assert.match(text, /^usher_admin_requests_total\{route="\/metrics",method="GET",status="200"\} 1$/m);
  });

  test('GET /api/v1/state returns pools, members, summaries and roles', async (t) => {
    const roles = { assigner: { clients: 3 } };
    const { server, registry } = await startAdmin(t, { roles: () => roles });
    const r = await http(server.url, '/api/v1/state');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const state = r.json() as AdminState;
    assert.equal(state.version, '9.9.9-test');
    assert.equal(state.revision, (await registry.snapshot()).revision);
    assert.equal(typeof state.time, 'number');
    assert.deepEqual(state.roles, roles);
    assert.deepEqual(
      state.pools.map((p) => p.name),
      ['web', 'empty', 'chat'],
      'declared pools first, in order, then the others',
    );
    const [web, empty] = state.pools;
    assert.deepEqual(
      web!.members.map((m) => m.id),
      ['web-1', 'web-2', 'web-3'],
    );
    assert.deepEqual(web!.members[0], {
      id: 'web-1',
      addresses: ['10.0.0.1'],
      ports: { main: 8080 },
      site: 'eu-west',
      group: 0,
      weight: 2,
      labels: { zone: 'a' },
      health: 'up',
      load: { users: 12, connections: 20, inFlight: 1, cpu: 0.25, custom: {}, timestamp: 1000 },
    });
    assert.equal(web!.members[1]!.load, null);
    assert.deepEqual(web!.summary, { up: 2, suspect: 1, down: 0, draining: 0, users: 12, connections: 20 });
    assert.deepEqual(empty, {
      name: 'empty',
      members: [],
      summary: { up: 0, suspect: 0, down: 0, draining: 0, users: 0, connections: 0 },
    });
  });

  test('GET / serves the self-contained dashboard with a strict CSP', async (t) => {
    const { server } = await startAdmin(t);
    const r = await http(server.url, '/');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(r.text, /new EventSource\('api\/v1\/events'\)/);
    assert.match(r.text, /data-panels/);
    assert.doesNotMatch(r.text, /<(script|link)[^>]+(src|href)="(https?:)?\/\//, 'no external resources');
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-/);
    const head = await http(server.url, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
  });
});

describe('admin server: event stream', () => {
  test('sends the state, then one event per registry change; disconnected clients are removed', async (t) => {
    const { server, registry } = await startAdmin(t);
    const client = await sse(t, server.url);
    assert.equal(client.status, 200);
    assert.match(String(client.headers['content-type']), /^text\/event-stream/);
    const first = await client.next();
    assert.equal(first.event, 'state');
    const state = JSON.parse(first.data) as AdminState;
    assert.equal(first.id, String(state.revision));
    assert.deepEqual(
      state.pools.map((p) => p.name),
      ['web', 'empty', 'chat'],
    );

    const load = { users: 42, connections: 50, inFlight: 0, cpu: 0.5, custom: { fps: 60 }, timestamp: 2000 };
    await registry.report('web-2', load);
    const loadEvent = await client.next();
    assert.equal(loadEvent.event, 'load');
    assert.deepEqual(JSON.parse(loadEvent.data), {
      type: 'load',
      revision: state.revision + 1,
      id: 'web-2',
      load,
    });

    await registry.setHealth('web-2', 'down', 'probe timeout');
    const health = await client.next();
    assert.equal(health.event, 'health');
    assert.deepEqual(JSON.parse(health.data), {
      type: 'health',
      revision: state.revision + 2,
      id: 'web-2',
      health: 'down',
      previous: 'up',
      reason: 'probe timeout',
    });

    await registry.register(makeMember({ id: 'web-4', pool: 'web' }));
    assert.equal((await client.next()).event, 'member-added');
    await registry.deregister('web-4', 'gone');
    assert.equal((await client.next()).event, 'member-removed');

    assert.match((await http(server.url, '/metrics')).text, /^usher_admin_event_clients 1$/m);
    client.close();
    await eventually(async () => {
      assert.match((await http(server.url, '/metrics')).text, /^usher_admin_event_clients 0$/m);
    });
  });

  test('loses no change made while the initial state is being built', async (t) => {
    // A registry whose snapshot is taken, then held until the test has made a change.
    let hold: { entered: () => void; release: Promise<void> } | undefined;
    class HeldRegistry extends MemoryRegistry {
      override async snapshot(): Promise<RegistrySnapshot> {
        const snap = await super.snapshot();
        const h = hold;
        hold = undefined;
        if (h) {
          h.entered();
          await h.release;
        }
        return snap;
      }
    }
    const registry = new HeldRegistry();
    const { server } = await startAdmin(t, { registry });
    let entered!: () => void;
    let release!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    hold = { entered, release: new Promise<void>((r) => (release = r)) };
    const clientP = sse(t, server.url);
    await inside;
    await registry.report('web-2', {
      users: 7,
      connections: 7,
      inFlight: 0,
      cpu: 0,
      custom: {},
      timestamp: 3,
    });
    release();
    const client = await clientP;
    const state = JSON.parse((await client.next()).data) as AdminState;
    const web2 = state.pools[0]!.members.find((m) => m.id === 'web-2')!;
    assert.equal(web2.load, null, 'the state predates the report');
    const next = await client.next();
    assert.equal(next.event, 'load');
    assert.equal((JSON.parse(next.data) as { load: { users: number } }).load.users, 7);
  });

  test('refuses clients beyond the cap with 503', async (t) => {
    const { server } = await startAdmin(t, { maxEventClients: 1 });
    const first = await sse(t, server.url);
    assert.equal((await first.next()).event, 'state');
    const second = await http(server.url, '/api/v1/events');
    assert.equal(second.status, 503);
    assert.equal((second.json() as ErrorReply).error.code, 'USHER_ERR_UNAVAILABLE');
    first.close();
    await eventually(async () => {
      const again = await sse(t, server.url);
      try {
        assert.equal(again.status, 200);
      } finally {
        again.close();
      }
    });
  });

  test('pushes role summaries when they change, and heartbeats', async (t) => {
    let roles: Record<string, unknown> = { list: { served: 1 } };
    const { server } = await startAdmin(t, { roles: () => roles, rolesIntervalMs: 20, heartbeatMs: 20 });
    const client = await sse(t, server.url);
    assert.deepEqual((JSON.parse((await client.next()).data) as AdminState).roles, { list: { served: 1 } });
    roles = { list: { served: 2 } };
    await eventually(async () => {
      const e = await client.next();
      assert.equal(e.event, 'roles');
      assert.deepEqual(JSON.parse(e.data), { list: { served: 2 } });
    });
    await eventually(() => assert.ok(client.comments.includes(': heartbeat')));
  });
});

describe('admin server: mutations', () => {
  for (const path of ['/api/v1/members/web-1/drain', '/api/v1/members/web-1/undrain', '/api/v1/reload']) {
    test(`POST ${path} needs the bearer token (401)`, async (t) => {
      const { server, calls } = await startAdmin(t);
      for (const headers of [
        {} as Record<string, string>,
        { Authorization: 'Bearer wrong' },
        { Authorization: `Bearer ${TOKEN}x` },
        { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
        { Authorization: TOKEN },
      ]) {
        const r = await http(server.url, path, { method: 'POST', headers });
        assert.equal(r.status, 401, JSON.stringify(headers));
        assert.equal((r.json() as ErrorReply).error.code, 'USHER_ERR_UNAUTHORIZED');
        assert.match(String(r.headers['www-authenticate']), /^Bearer/);
      }
      assert.deepEqual(calls, { drain: [], undrain: [], reload: [] });
    });
  }

  test('mutations are refused with 403 when no token is configured', async (t) => {
    for (const token of [undefined, '']) {
      const { server, calls } = await startAdmin(t, { token });
      const r = await http(server.url, '/api/v1/members/web-1/drain', { method: 'POST', headers: auth });
      assert.equal(r.status, 403);
      const body = r.json() as ErrorReply;
      assert.equal(body.error.code, 'USHER_ERR_FORBIDDEN');
      assert.match(body.error.message, /USHER_ADMIN_TOKEN/);
      assert.deepEqual(calls.drain, []);
    }
  });

  test('drain and undrain call the actions; unknown members are 404', async (t) => {
    const { server, calls, registry } = await startAdmin(t);
    let r = await http(server.url, '/api/v1/members/web-1/drain', { method: 'POST', headers: auth });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { ok: true, id: 'web-1', health: 'draining' });
    assert.equal((await registry.get('web-1'))?.health, 'draining');

    r = await http(server.url, '/api/v1/members/web-1/undrain', {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { ok: true, id: 'web-1', health: 'up' });

    r = await http(server.url, '/api/v1/members/nobody/drain', { method: 'POST', headers: auth });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), {
      error: { code: 'USHER_ERR_NOT_FOUND', message: 'member not found: nobody' },
    });
    assert.deepEqual(calls.drain, ['web-1']);
    assert.deepEqual(calls.undrain, ['web-1']);

    await registry.register(makeMember({ id: 'odd/id ü', pool: 'web' }));
    r = await http(server.url, `/api/v1/members/${encodeURIComponent('odd/id ü')}/drain`, {
      method: 'POST',
      headers: auth,
    });
    assert.equal(r.status, 200, 'ids are percent-decoded');
    assert.deepEqual(calls.drain, ['web-1', 'odd/id ü']);
  });

  test('reload passes the body through and reports refused changes as 400 with the issues', async (t) => {
    const h = await startAdmin(t);
    h.reloadResult = { ok: true, revision: 5 };
    let r = await http(h.server.url, '/api/v1/reload', { method: 'POST', headers: auth });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { ok: true, revision: 5 });

    const config = { pools: { web: { members: [{ id: 'w', port: 70000 }] } } };
    const issues = [{ path: 'pools.web.members[0].port', message: 'expected 1..65535, got 70000' }];
    h.reloadResult = { ok: false, issues };
    r = await http(h.server.url, '/api/v1/reload', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(config),
    });
    assert.equal(r.status, 400);
    const body = r.json() as ErrorReply;
    assert.equal(body.error.code, 'USHER_ERR_CONFIG_INVALID');
    assert.deepEqual(body.error.issues, issues);
    assert.match(body.error.message, /pools\.web\.members\[0\]\.port: expected 1\.\.65535, got 70000/);
    assert.deepEqual(h.calls.reload, [undefined, config]);
  });
});

describe('admin server: bad requests', () => {
  test('malformed JSON and non-object bodies are 400', async (t) => {
    const { server, calls } = await startAdmin(t);
    for (const [path, body] of [
      ['/api/v1/reload', '{"pools": '],
      ['/api/v1/members/web-1/drain', 'not json'],
      ['/api/v1/reload', '[1, 2]'],
      ['/api/v1/reload', 'null'],
    ] as const) {
      const r = await http(server.url, path, { method: 'POST', headers: auth, body });
      assert.equal(r.status, 400, body);
      const e = (r.json() as ErrorReply).error;
      assert.equal(e.code, 'USHER_ERR_BAD_REQUEST');
      assert.match(e.message, /malformed JSON body|expected a JSON object body/);
    }
    assert.deepEqual(calls, { drain: [], undrain: [], reload: [] });
  });

  test('unknown fields are 400 naming the field', async (t) => {
    const { server, calls } = await startAdmin(t);
    const r = await http(server.url, '/api/v1/members/web-1/drain', {
      method: 'POST',
      headers: auth,
      body: '{"force": true}',
    });
    assert.equal(r.status, 400);
    const e = (r.json() as ErrorReply).error;
    assert.equal(e.code, 'USHER_ERR_BAD_REQUEST');
    assert.match(e.message, /unknown field "force"/);
    assert.deepEqual(calls.drain, []);
  });

  test('bodies over the limit are 413, declared or streamed', async (t) => {
    const { server, calls } = await startAdmin(t);
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    let r = await http(server.url, '/api/v1/reload', { method: 'POST', headers: auth, body: big });
    assert.equal(r.status, 413);
    assert.equal((r.json() as ErrorReply).error.code, 'USHER_ERR_PAYLOAD_TOO_LARGE');

    const small = await startAdmin(t, { maxBodyBytes: 1024 });
    r = await http(small.server.url, '/api/v1/reload', {
      method: 'POST',
      headers: auth,
      chunks: [Buffer.from('{"a": "'), Buffer.alloc(2048, 0x61), Buffer.from('"}')],
    });
    assert.equal(r.status, 413);
    assert.deepEqual(calls.reload, []);
    assert.deepEqual(small.calls.reload, []);
    assert.equal((await http(small.server.url, '/healthz')).status, 200, 'still serving');
  });

  test('unknown routes are 404, wrong methods 405 with Allow', async (t) => {
    const { server } = await startAdmin(t);
    let r = await http(server.url, '/api/v1/nothing');
    assert.equal(r.status, 404);
    assert.equal((r.json() as ErrorReply).error.code, 'USHER_ERR_NOT_FOUND');
    assert.equal((await http(server.url, '/api/v1/members//drain', { method: 'POST' })).status, 404);

    r = await http(server.url, '/api/v1/reload');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'POST');
    assert.equal((r.json() as ErrorReply).error.code, 'USHER_ERR_METHOD_NOT_ALLOWED');
    r = await http(server.url, '/healthz', { method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
    r = await http(server.url, '/api/v1/members/web-1/drain', { method: 'GET' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'POST');
  });

  test('never crashes: broken encodings, failing actions and roles, garbage on the socket', async (t) => {
    let rolesThrow = false;
    const h = await startAdmin(t, {
      logger: pino({ level: 'silent' }),
      roles: () => {
        if (rolesThrow) throw new Error('role summary failed');
        return {};
      },
    });
    const { server } = h;
    let r = await http(server.url, '/api/v1/members/%E0%A4%A/drain', { method: 'POST', headers: auth });
    assert.equal(r.status, 400);

    h.reloadResult = undefined as never; // the action misbehaves
    r = await http(server.url, '/api/v1/reload', { method: 'POST', headers: auth });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json(), {
      error: { code: 'USHER_ERR_INTERNAL', message: 'internal error while handling POST /api/v1/reload' },
    });

    rolesThrow = true;
    assert.equal((await http(server.url, '/api/v1/state')).status, 500);
    rolesThrow = false;

    const garbage = await raw(server.port, '\x00\x01GARBAGE / HTTP/9\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400/);
    const absolute = await raw(
      server.port,
      'GET http://admin.example/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.match(absolute, /^HTTP\/1\.1 200[\s\S]*\r\n\r\nok$/);
    assert.equal((await http(server.url, '/api/v1/state')).status, 200);
  });
});

/** Writes bytes on a fresh connection and returns everything the server sends before closing. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes, 'latin1'));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}
