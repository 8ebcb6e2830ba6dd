#!/usr/bin/env node
// `npm test`: prepares the machine (Debian packages the suites use, installed only when missing),
// then type-checks, lints and runs every test with node's test runner.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { prepareTestEnv } from './prepare-test-env.mjs';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const skipChecks = args.includes('--no-checks');

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

prepareTestEnv();

if (!skipChecks) {
  console.log('# tsc --noEmit (strict)');
  if (run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']) !== 0) process.exit(1);
  console.log('# biome check');
  if (run('npx', ['biome', 'check', '.']) !== 0) process.exit(1);
}

let files = findTests(join(root, 'test'));
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
console.log(`# node --test: ${files.length} files`);
const reporters = [
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/summary-reporter.mjs',
  '--test-reporter-destination=stdout',
];
const status = run(process.execPath, ['--import', 'tsx', '--test', ...reporters, ...files], {
  env: { ...process.env, USHER_TEST: '1' },
});
process.exit(status);
