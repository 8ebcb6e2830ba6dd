import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../src/config/load.js';
import { Usher } from '../src/runtime.js';
import { createLogger } from '../src/util/logger.js';
import { eventually } from './support/wait.js';

const logger = createLogger({ level: 'silent', format: 'json' });

interface TrafficSummary {
  sent: number;
  picks: Record<string, number>;
  policy: string;
}

describe('Usher runtime', () => {
  it('demo traffic goes where the policy says, never to a drained member, and reload swaps the policy', async () => {
    const config = validateConfig({
      pools: {
        web: {
          policy: { name: 'round-robin' },
          health: { kind: 'http', intervalMs: 100, timeoutMs: 500 },
        },
      },
      demo: {
        servers: [{ pool: 'web', count: 3, basePort: 0, reportIntervalMs: 200 }],
        traffic: [{ pool: 'web', ratePerSec: 100, holdMs: 0 }],
      },
    });
    const usher = await Usher.start(config, { logger });
    try {
      const traffic = (): TrafficSummary => (usher.roles().demo as { traffic: TrafficSummary[] }).traffic[0]!;
      await eventually(() => assert.ok(traffic().sent >= 30, '30 demo requests'), 15000);
      const picks = traffic().picks;
      assert.deepEqual(Object.keys(picks).sort(), ['web-1', 'web-2', 'web-3']);
      const counts = Object.values(picks);
      assert.ok(
        Math.max(...counts) - Math.min(...counts) <= 2,
        `round robin spreads evenly: ${JSON.stringify(picks)}`,
      );
      assert.equal(traffic().policy, 'round-robin');

      await usher.drain('web-2');
      const before = traffic().picks['web-2'] ?? 0;
      const sentBefore = traffic().sent;
      await eventually(() => assert.ok(traffic().sent >= sentBefore + 30, '30 more requests'), 15000);
      assert.equal(traffic().picks['web-2'] ?? 0, before, 'a drained member gets no new requests');
      assert.equal((await usher.registry.get('web-2'))?.health, 'draining');

      const result = await usher.reload(
        validateConfig({
          ...structuredClone(config),
          pools: { web: { ...config.pools.web, policy: { name: 'random' } } },
        }),
      );
      assert.equal(result.ok, true);
      assert.equal(traffic().policy, 'random');
    } finally {
      await usher.close();
    }
  });
});
