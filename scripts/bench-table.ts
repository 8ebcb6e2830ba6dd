/**
 * Prints the README's benchmark table from bench/results/*.json (written only by the
 * benchmarks themselves), and with `--write` replaces the block between the markers in README.md.
 * Run: `node --import tsx scripts/bench-table.ts [--write]`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceReadmeBlock } from './readme-block.js';

interface Result {
  name: string;
  metric: string;
  unit: string;
  higherIsBetter: boolean;
  ours: number;
  peers: Record<string, number>;
  limit: Record<string, number> | null;
  ratios: Record<string, number>;
  date: string;
  host: { cpu?: string; cores?: number; node?: string };
  quick?: boolean;
}

const dir = 'bench/results';
const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(n < 10 ? 2 : 0);

const rows: string[] = [];
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()) {
  const r = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Result;
  const others = [
    ...Object.entries(r.peers).map(([k, v]) => `${k} ${fmt(v)} (×${r.ratios[k]?.toFixed(2)})`),
    ...Object.entries(r.limit ?? {}).map(([k, v]) => `limit ${k} ${fmt(v)} (×${r.ratios[k]?.toFixed(3)})`),
  ];
  rows.push(
    `| \`${r.name}\` | ${r.metric} | **${fmt(r.ours)}** ${r.unit} | ${others.join('; ')} | ${r.date.slice(0, 10)}, ${r.host.cores ?? '?'} cores, ${r.host.node ?? ''}${r.quick ? ', quick' : ''} |`,
  );
}
const table = [
  '| benchmark | metric | ours | peers and limits (ratio ours/peer) | run |',
  '| --- | --- | --- | --- | --- |',
  ...rows,
].join('\n');

if (process.argv.includes('--write')) replaceReadmeBlock('bench-table', table);
else console.log(table);
