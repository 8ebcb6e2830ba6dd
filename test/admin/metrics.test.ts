import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Metrics, normaliseMetricName } from '../../src/admin/metrics.js';
import { InvalidArgumentError } from '../../src/errors.js';

const invalid = (code: string) => (e: unknown) => e instanceof InvalidArgumentError && e.code === code;

describe('Metrics', () => {
  test('prefixes names with usher_ and keeps names already prefixed', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.counter('probe_dropped_total', 'Probe packets dropped', ['reason']).inc({ reason: 'malformed' });
    metrics.gauge('usher_members', 'Members').set(3);
    const text = await metrics.text();
    assert.match(text, /^usher_probe_dropped_total\{reason="malformed"\} 1$/m);
    assert.match(text, /^usher_members 3$/m);
    assert.doesNotMatch(text, /usher_usher_/);
    assert.equal(normaliseMetricName('x'), 'usher_x');
    assert.equal(normaliseMetricName('usher_x'), 'usher_x');
  });

  test('get-or-create returns the same metric for the same name, type and labels', () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const a = metrics.counter('requests_total', 'Requests', ['route', 'status']);
    assert.equal(metrics.counter('usher_requests_total', 'Requests', ['status', 'route']), a);
    const h = metrics.histogram('latency_seconds', 'Latency', [], [0.1, 1]);
    assert.equal(metrics.histogram('latency_seconds', 'Latency'), h);
  });

  test('refuses a name reused with another type or other labels, and invalid names', () => {
    const metrics = new Metrics();
    metrics.counter('requests_total', 'Requests', ['route']);
    assert.throws(
      () => metrics.gauge('requests_total', 'Requests', ['route']),
      invalid('USHER_ERR_INVALID_ARGUMENT'),
    );
    assert.throws(
      () => metrics.counter('requests_total', 'Requests', ['path']),
      /already registered with labels/,
    );
    assert.throws(() => metrics.counter('bad-name', 'x'), /invalid metric name "bad-name"/);
    assert.throws(() => metrics.counter('usher_', 'x'), /invalid metric name/);
    assert.throws(() => metrics.counter('ok_total', 'x', ['bad-label']), /invalid label name "bad-label"/);
    assert.throws(() => metrics.gauge('process_cpu_user_seconds_total', 'x'), /default process metric/);
  });

  test('instances are independent of each other and of the global registry', async () => {
    const one = new Metrics();
    const two = new Metrics();
    one.counter('events_total', 'Events').inc(5);
    two.counter('events_total', 'Events').inc(1);
    assert.match(await one.text(), /^usher_events_total 5$/m);
    assert.match(await two.text(), /^usher_events_total 1$/m);
    const { register } = await import('prom-client');
    assert.equal(register.getSingleMetric('usher_events_total'), undefined);
  });

  test('collects process metrics with the usher_ prefix; histograms use the given buckets', async () => {
    const metrics = new Metrics({ defaultLabels: { instance: 'lb-1' } });
    metrics
      .histogram('assign_seconds', 'Assignment time', ['policy'], [0.001, 0.01])
      .observe({ policy: 'p2c' }, 0.005);
    const text = await metrics.text();
    assert.match(text, /^usher_process_resident_memory_bytes\{instance="lb-1"\} \d+/m);
    assert.match(text, /^usher_nodejs_eventloop_lag_seconds\{instance="lb-1"\} /m);
    assert.match(text, /^usher_assign_seconds_bucket\{le="0.01",instance="lb-1",policy="p2c"\} 1$/m);
    assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
  });
});
