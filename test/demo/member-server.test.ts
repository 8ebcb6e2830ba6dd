import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { DemoMemberServer } from '../../src/demo/member-server.js';
import { MemoryRegistry } from '../../src/registry/memory.js';

describe('demo member server', () => {
  it('registers, reports load, answers HTTP and lets a request in flight finish on close', async () => {
    const registry = new MemoryRegistry();
    const loads: number[] = [];
    registry.watch((e) => {
      if (e.type === 'load') loads.push(e.load.users);
    });
    const demo = new DemoMemberServer({ id: 'd1', pool: 'web', port: 0, registry, reportIntervalMs: 100 });
    const member = await demo.start();
    const port = member.ports.main!;
    assert.ok(port > 0);
    assert.equal((await registry.get('d1'))?.member.pool, 'web');
    assert.ok(loads.length >= 1, 'a load report is published at start');

    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.deepEqual(await res.json(), { member: 'd1', pool: 'web', served: 1 });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text(), 'ok\n');

    // A request whose body is still being sent when close() starts is answered, not cut.
    const answered = new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: false }, (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write('partial');
      const deadline = Date.now() + 5000;
      const waitInFlight = () => {
        if (Date.now() > deadline) return reject(new Error('the request never reached the server'));
        if (demo.stats().inFlight === 0) return void setTimeout(waitInFlight, 5);
        const closing = demo.close();
        closing.catch(reject);
        // The server has stopped listening; the request in flight still completes.
        setImmediate(() => req.end());
      };
      waitInFlight();
    });
    assert.equal(await answered, 200);
    assert.equal(demo.stats().served, 3);
    await registry.close();
  });
});
