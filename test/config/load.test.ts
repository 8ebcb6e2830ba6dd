import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffConfig, reloadIssues, staticMembers } from '../../src/config/diff.js';
import { formatPath, parseConfig, validateConfig } from '../../src/config/load.js';
import { ConfigInvalidError, ConfigUnreadableError } from '../../src/errors.js';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigInvalidError, `expected ConfigInvalidError, got ${String(error)}`);
    assert.equal(error.code, 'USHER_ERR_CONFIG_INVALID');
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected the config to be refused');
}

describe('config', () => {
  it('fills defaults and freezes the result', () => {
    const c = parseConfig('pools: { web: { members: [ { id: web-1, port: 8080 } ] } }');
    assert.equal(c.registry.kind, 'memory');
    assert.equal(c.pools.web?.policy.name, 'round-robin');
    assert.equal(c.pools.web?.health.kind, 'tcp');
    assert.deepEqual(c.pools.web?.members[0], {
      id: 'web-1',
      address: '127.0.0.1',
      port: 8080,
      ports: {},
      site: 'local',
      group: 0,
      weight: 1,
      labels: {},
    });
    assert.ok(Object.isFrozen(c.pools.web?.members[0]));
    assert.equal(c.admin, undefined, 'a missing section leaves its role off');
  });

  it('names the exact key path and reason of every problem', () => {
    const issues = issuesOf(() =>
      parseConfig(`
pools:
  web:
    members:
      - { id: a, port: 8080 }
      - { id: b, port: 8081 }
      - { id: c, port: 70000 }
`),
    );
    assert.deepEqual(issues, ['pools.web.members[2].port: expected 1..65535, got 70000']);
  });

  it('reports unknown keys, wrong types and bad enum values', () => {
    const issues = issuesOf(() =>
      validateConfig({
        pools: { web: { policy: { name: 'fastest' }, members: [{ id: 'a', port: 'x', colour: 'red' }] } },
        admni: {},
      }),
    );
    assert.ok(issues.includes('admni: unknown key'), issues.join('\n'));
    assert.ok(issues.includes('pools.web.members[0].colour: unknown key'), issues.join('\n'));
    assert.ok(issues.includes('pools.web.members[0].port: expected number, got "x"'), issues.join('\n'));
    assert.ok(
      issues.some(
        (i) =>
          i.startsWith('pools.web.policy.name: expected one of "round-robin"') && i.endsWith('got "fastest"'),
      ),
      issues.join('\n'),
    );
  });

  it('refuses duplicate member ids, non-prime Maglev tables and demo servers of unknown pools', () => {
    const issues = issuesOf(() =>
      validateConfig({
        pools: {
          a: { members: [{ id: 'm', port: 1 }] },
          b: { policy: { name: 'maglev', tableSize: 1000 }, members: [{ id: 'm', port: 2 }] },
        },
        demo: { servers: [{ pool: 'c', basePort: 9000 }] },
      }),
    );
    assert.deepEqual(issues, [
      'pools.b.members[0].id: duplicate member id "m" (also at pools.a.members[0])',
      'pools.b.policy.tableSize: expected a prime number 3..16777213 (e.g. 65537), got 1000',
      'demo.servers[0].pool: unknown pool "c" (declared: a, b)',
    ]);
  });

  it('refuses policy options the chosen policy does not take', () => {
    const issues = issuesOf(() =>
      validateConfig({ pools: { web: { policy: { name: 'round-robin', metric: 'users' } } } }),
    );
    assert.equal(issues.length, 1);
    assert.match(issues[0]!, /^pools\.web\.policy: .*unknown option "metric"/);
    const bad = issuesOf(() =>
      validateConfig({ pools: { web: { policy: { name: 'p2c', metric: 'colour' } } } }),
    );
    assert.match(bad[0]!, /^pools\.web\.policy\.metric: /);
  });

  it('reports YAML syntax errors as unreadable, not invalid', () => {
    assert.throws(() => parseConfig('pools: [unclosed'), ConfigUnreadableError);
    assert.throws(() => parseConfig('a: 1\na: 2'), ConfigUnreadableError);
  });

  it('formats paths with indexes and quoted odd keys', () => {
    assert.equal(formatPath(['pools', 'web', 'members', 2, 'port']), 'pools.web.members[2].port');
    assert.equal(formatPath(['pools', 'a b']), 'pools["a b"]');
  });

  it('diffs two configs into members added, updated and removed', () => {
    const a = validateConfig({
      pools: {
        web: {
          members: [
            { id: 'w1', port: 1 },
            { id: 'w2', port: 2 },
          ],
        },
      },
    });
    const b = validateConfig({
      pools: {
        web: {
          members: [
            { id: 'w2', port: 3 },
            { id: 'w3', port: 4 },
          ],
        },
      },
    });
    const d = diffConfig(a, b);
    assert.deepEqual(
      d.added.map((m) => m.id),
      ['w3'],
    );
    assert.deepEqual(
      d.updated.map((m) => [m.id, m.ports.main]),
      [['w2', 3]],
    );
    assert.deepEqual(d.removed, ['w1']);
    assert.deepEqual(d.poolsChanged, []);
    assert.deepEqual(staticMembers(b)[0]?.addresses, ['127.0.0.1']);
  });

  it('refuses a reload that changes a restart-only section', () => {
    const a = validateConfig({ admin: { port: 9000 } });
    const b = validateConfig({ admin: { port: 9001 } });
    assert.deepEqual(
      reloadIssues(a, b).map((i) => i.path),
      ['admin'],
    );
    assert.deepEqual(reloadIssues(a, a), []);
  });
});
