/**
 * Registry health in the metrics: whether a shared registry is reachable (etcd), how the mesh
 * sees its peers, and what each dropped. Sampled once a second from the registry's own stats.
 */
import type { Metrics } from '../admin/metrics.js';
import { EtcdRegistry } from './etcd/index.js';
import { LeasedRegistry } from './leased.js';
import { MeshRegistry } from './mesh/index.js';
import type { Registry } from './registry.js';

/** Starts sampling; returns a function that stops it. */
export function sampleRegistryMetrics(metrics: Metrics, registry: Registry, everyMs = 1000): () => void {
  const inner = registry instanceof LeasedRegistry ? registry.inner : registry;
  let sample: (() => void) | undefined;
  if (inner instanceof EtcdRegistry) {
    const connected = metrics.gauge(
      'registry_connected',
      'Whether the shared registry is reachable (0: serving the last view).',
      ['kind'],
    );
    const counts = metrics.gauge('registry_etcd_events', 'etcd registry counters since start, by kind.', [
      'what',
    ]);
    sample = () => {
      const s = inner.stats();
      connected.set({ kind: 'etcd' }, s.connected ? 1 : 0);
      for (const what of ['reconnects', 'watchEvents', 'writesFailed', 'resyncs', 'reregistered'] as const)
        counts.set({ what }, s[what]);
    };
  } else if (inner instanceof MeshRegistry) {
    const nodes = metrics.gauge('mesh_nodes', 'Mesh nodes by state as this node sees them.', ['state']);
    const frames = metrics.gauge('mesh_frames', 'Mesh frames since start, by direction.', ['direction']);
    const dropped = metrics.gauge('mesh_dropped', 'Mesh input dropped since start, by reason.', ['reason']);
    const auth = metrics.gauge(
      'mesh_auth_failures',
      'Mesh handshakes refused for a wrong secret since start.',
    );
    const peers = metrics.gauge('mesh_connections', 'Mesh peer connections established now.');
    sample = () => {
      const s = inner.stats();
      const byState: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
      for (const n of inner.nodes()) byState[n.state] = (byState[n.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(byState)) nodes.set({ state }, n);
      frames.set({ direction: 'in' }, s.framesIn);
      frames.set({ direction: 'out' }, s.framesOut);
      for (const [reason, n] of Object.entries(s.dropped)) dropped.set({ reason }, n ?? 0);
      auth.set(s.authFailures);
      peers.set(s.connections);
    };
  }
  if (!sample) return () => {};
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
