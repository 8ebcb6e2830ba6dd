import { MemoryRegistry } from '../../src/registry/memory.js';
import { registryContract } from './contract.js';

registryContract('memory', async () => {
  const registry = new MemoryRegistry();
  return { registry, cleanup: () => registry.close() };
});
