import { registryContract } from './contract.js';
import { connected, SplitRegistry, startNode as start } from './fixtures/mesh-cluster.js';

// The contract does not test failure detection: lenient timings so a busy machine never makes
// a node suspect (which would turn its members `suspect` in the middle of a contract test).
const LENIENT = { intervalMs: 100, missedReports: 20, pingTimeoutMs: 1_000 };
const startNode = (options = {}) => start({ ...LENIENT, ...options });

registryContract('mesh (one node)', async () => {
  const registry = await startNode();
  return { registry, cleanup: () => registry.close() };
});

registryContract('mesh (write on A, read on B)', async () => {
  const a = await startNode();
  const b = await startNode({ seeds: [a.advertise] }).catch(async (error) => {
    await a.close();
    throw error;
  });
  const registry = new SplitRegistry(a, b);
  try {
    await connected([a, b]);
  } catch (error) {
    await registry.close();
    throw error;
  }
  return { registry, cleanup: () => registry.close() };
});
