import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/admin/metrics.js';
import { AssignerStats, BufferedCounter } from '../../src/probe/assigner-stats.js';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('assigner stats', () => {
  it('buffered counts reach prom-client whenever it is read', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const stats = new AssignerStats(metrics);
    for (let i = 0; i < 3; i++) stats.request('game', 'PROBE');
    stats.request('', 'CATALOG');
    stats.assignment('game', 'm1', 'answer', 0);
    stats.assignment('game', 'm2', 'answer', 0);
    stats.assignment('game', 'm1', 'answer', 0);
    stats.bytes('in', 320);
    stats.bytes('out-member', 46);
    let text = await metrics.text();
    assert.equal(value(text, 'usher_probe_requests_total{app="game",kind="PROBE"}'), 3);
    assert.equal(value(text, 'usher_probe_requests_total{app="",kind="CATALOG"}'), 1);
    assert.equal(value(text, 'usher_probe_assignments_total{app="game",member="m1",mode="answer"}'), 2);
    assert.equal(value(text, 'usher_probe_assignments_total{app="game",member="m2",mode="answer"}'), 1);
    assert.equal(value(text, 'usher_probe_bytes_total{direction="in"}'), 320);
    assert.equal(value(text, 'usher_probe_bytes_total{direction="out"}'), 0);
    assert.equal(value(text, 'usher_probe_bytes_total{direction="out-member"}'), 46);

    // Counted once: a second read adds only what came since.
    stats.request('game', 'PROBE');
    stats.bytes('in', 80);
    text = await metrics.text();
    assert.equal(value(text, 'usher_probe_requests_total{app="game",kind="PROBE"}'), 4);
    assert.equal(value(text, 'usher_probe_bytes_total{direction="in"}'), 400);

    const summary = stats.summary(
      { address: '127.0.0.1:1', mode: 'answer', sources: 1 },
      { game: { pool: 'game' } },
      0,
    );
    assert.equal(summary.totals.requests, 5);
    assert.equal(summary.totals.assignments, 3);
    assert.equal(summary.totals.bytesIn, 400);
    assert.deepEqual(summary.apps, { game: { pool: 'game', requests: 4, assignments: 3 } });
    assert.deepEqual(summary.members, { m1: 2, m2: 1 });
  });

  it('two buffered counters over one metric both flush', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const a = new AssignerStats(metrics);
    const b = new AssignerStats(metrics);
    a.request('game', 'PROBE');
    b.request('game', 'PROBE');
    b.request('game', 'PROBE');
    assert.equal(value(await metrics.text(), 'usher_probe_requests_total{app="game",kind="PROBE"}'), 3);
  });

  it('a BufferedCounter finds a series by up to three label values', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const c = new BufferedCounter(metrics.counter('x_total', 'x', ['a', 'b']), ['a', 'b']);
    assert.equal(c.series('1', '2'), c.series('1', '2'));
    assert.notEqual(c.series('1', '2'), c.series('1', '3'));
    c.inc(5, '1', '2');
    c.series('1', '3').pending += 2;
    const text = await metrics.text();
    assert.equal(value(text, 'usher_x_total{a="1",b="2"}'), 5);
    assert.equal(value(text, 'usher_x_total{a="1",b="3"}'), 2);
    assert.equal(c.series('1', '2').total, 5);
  });
});
