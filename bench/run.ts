/**
 * `npm run bench -- <name> [--quick]`: runs `bench/<name>.ts` (its exported `run`).
 * With no name, lists the benchmarks there are.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, type BenchRun } from './harness.js';

const NOT_BENCHMARKS = new Set(['harness', 'run']);

async function available(): Promise<string[]> {
  const files = await readdir(BENCH_DIR);
  return files
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((name) => !NOT_BENCHMARKS.has(name))
    .sort();
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const rest = args.filter((a) => a !== '--quick');
  const name = rest.find((a) => !a.startsWith('-'));
  const names = await available();
  if (name === undefined) {
    console.log('usage: npm run bench -- <name> [--quick]\n\nbenchmarks:');
    for (const n of names) console.log(`  ${n}`);
    return 0;
  }
  if (!names.includes(name)) {
    console.error(`unknown benchmark ${JSON.stringify(name)}; expected one of: ${names.join(', ')}`);
    return 2;
  }
  const mod = (await import(pathToFileURL(join(BENCH_DIR, `${name}.ts`)).href)) as { run?: BenchRun };
  if (typeof mod.run !== 'function') {
    console.error(`bench/${name}.ts does not export run(options)`);
    return 2;
  }
  await mod.run({ quick, argv: rest.filter((a) => a !== name) });
  return 0;
}

process.exitCode = await main();
