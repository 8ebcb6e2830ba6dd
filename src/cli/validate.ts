import { loadConfigFile } from '../config/load.js';
import type { CliIo } from './main.js';

export async function validateCommand(file: string, opts: { json: boolean }, io: CliIo): Promise<number> {
  const config = await loadConfigFile(file);
  if (opts.json) {
    io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return 0;
  }
  const pools = Object.entries(config.pools);
  const members = pools.reduce((n, [, p]) => n + p.members.length, 0);
  const roles = [
    ...['admin', 'assigner', 'list', 'cluster', 'demo'].filter(
      (r) => (config as Record<string, unknown>)[r] !== undefined,
    ),
    ...(config.agents.length > 0 ? ['agents'] : []),
    ...(config.registry.kind === 'mesh' ? ['mesh'] : []),
  ];
  io.stdout.write(
    `${file}: valid (${pools.length} pool${pools.length === 1 ? '' : 's'}, ${members} static member${members === 1 ? '' : 's'}; roles: ${roles.join(', ') || 'none'})\n`,
  );
  return 0;
}
