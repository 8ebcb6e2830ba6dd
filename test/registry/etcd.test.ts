/**
 * The etcd registry against a real etcd: the registry contract (one instance, and writes on
 * one instance read on another), then what is specific to etcd: options, the key layout,
 * values written by something else.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { makeMember } from '../../src/core/model.js';
import { EtcdRegistry } from '../../src/registry/etcd/index.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';
import { registryContract } from './contract.js';
import { type EtcdServer, freePort, startEtcd } from './fixtures/etcd-server.js';
import { SplitRegistry } from './fixtures/split-registry.js';

const skip = needsCommands('etcd registry', 'etcd');

/** The test etcd runs with a 500 ms election timeout, so it grants 1 s leases (its minimum). */
const LEASE_TTL_MS = 1_000;

function freshPrefix(): string {
  return `/usher-test/${randomBytes(6).toString('hex')}/`;
}

describe('etcd registry', { skip }, () => {
  let server: EtcdServer;
  before(async () => {
    server = await startEtcd({ name: 'contract' });
  });
  after(async () => {
    await server?.stop();
  });

  const start = (prefix: string) => EtcdRegistry.start({ endpoints: [server.endpoint], prefix });

  registryContract(
    'etcd (one instance)',
    async () => {
      const registry = await start(freshPrefix());
      return { registry, cleanup: () => registry.close() };
    },
    { leaseTtlMs: LEASE_TTL_MS, timeoutMs: 5_000 },
  );

  registryContract(
    'etcd (write on A, read on B)',
    async () => {
      const prefix = freshPrefix();
      const a = await start(prefix);
      const b = await start(prefix).catch(async (error) => {
        await a.close();
        throw error;
      });
      const registry = new SplitRegistry(a, b);
      return { registry, cleanup: () => registry.close() };
    },
    { leaseTtlMs: LEASE_TTL_MS, timeoutMs: 5_000 },
  );

  describe('etcd specifics', () => {
    let raw: Etcd3;
    before(() => {
      raw = new Etcd3({ hosts: [server.endpoint] });
    });
    after(() => {
      raw?.close();
    });

    it('rejects bad options with InvalidArgumentError naming the option', async () => {
      const cases: [object, string][] = [
        [{ endpoints: [] }, 'endpoints'],
        [{ endpoints: ['127.0.0.1:2379'] }, 'endpoints[0]'],
        [{ endpoints: [server.endpoint], prefix: 'usher' }, 'prefix'],
        [{ endpoints: [server.endpoint], dialTimeoutMs: 0 }, 'dialTimeoutMs'],
        [{ endpoints: [server.endpoint], logger: 'x' }, 'logger'],
      ];
      for (const [options, name] of cases) {
        await assert.rejects(
          EtcdRegistry.start(options as never),
          (error: Error & { code?: string }) =>
            error.code === 'USHER_ERR_INVALID_ARGUMENT' && error.message.includes(`option ${name}:`),
          `bad ${name}`,
        );
      }
    });

    it('start rejects with RegistryError when no etcd answers', async () => {
      const port = await freePort();
      await assert.rejects(
        EtcdRegistry.start({ endpoints: [`http://127.0.0.1:${port}`], dialTimeoutMs: 500 }),
        (error: Error & { code?: string }) => error.code === 'USHER_ERR_REGISTRY',
      );
    });

    it('stores each field under its documented key', async () => {
      const prefix = freshPrefix();
      const registry = await start(prefix);
      try {
        await registry.register(makeMember({ id: 'web-1', pool: 'web' }), { ttlMs: 5_000 });
        await registry.report('web-1', {
          users: 3,
          connections: 4,
          inFlight: 1,
          cpu: 0.5,
          custom: {},
          timestamp: 7,
        });
        await registry.setHealth('web-1', 'draining', 'deploy');
        await registry.assign('gateway/site/shop', { frontends: ['a'] });
        const stored = await raw.getAll().prefix(prefix).strings();
        const keys = Object.keys(stored).map((k) => k.slice(prefix.length));
        assert.deepEqual(keys.sort(), [
          'assignments/gateway/site/shop',
          'health/web-1',
          'load/web-1',
          'members/web-1',
        ]);
        assert.deepEqual(JSON.parse(stored[`${prefix}health/web-1`]!), {
          health: 'draining',
          reason: 'deploy',
        });
        assert.equal(JSON.parse(stored[`${prefix}members/web-1`]!).pool, 'web');
        assert.equal(JSON.parse(stored[`${prefix}load/web-1`]!).users, 3);
        assert.deepEqual(JSON.parse(stored[`${prefix}assignments/gateway/site/shop`]!).value, {
          frontends: ['a'],
        });
        // The member's keys share its lease; the assignment has none.
        const leases = await Promise.all(
          ['members/web-1', 'health/web-1', 'load/web-1', 'assignments/gateway/site/shop'].map(async (k) => {
            const r = await raw.get(`${prefix}${k}`).exec();
            return r.kvs[0]?.lease;
          }),
        );
        assert.notEqual(leases[0], '0');
        assert.deepEqual(leases, [leases[0], leases[0], leases[0], '0']);

        await registry.deregister('web-1', 'scaled-in');
        const after = await raw.getAll().prefix(prefix).strings();
        assert.deepEqual(JSON.parse(after[`${prefix}removed/web-1`]!), { reason: 'scaled-in' });
        assert.equal(after[`${prefix}members/web-1`], undefined);
      } finally {
        await registry.close();
      }
    });

    it('ignores and counts values it cannot decode; sees members written by another tool', async () => {
      const prefix = freshPrefix();
      const registry = await start(prefix);
      try {
        const seen: string[] = [];
        registry.watch((e) => seen.push(e.type));
        await raw.put(`${prefix}members/bad`).value('{not json');
        await raw.put(`${prefix}assignments/bad`).value('[]');
        await raw.put(`${prefix}unknown/x`).value('1');
        const m = makeMember({ id: 'tool-1' });
        await raw.put(`${prefix}members/tool-1`).value(JSON.stringify(m));
        await eventually(async () => assert.deepEqual((await registry.get('tool-1'))?.member, m, 'tool-1'));
        assert.deepEqual(seen, ['member-added']);
        assert.equal(registry.stats().malformed, 2);
        assert.equal(await registry.get('bad'), undefined);
      } finally {
        await registry.close();
      }
    });
  });
});
