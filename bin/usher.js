#!/usr/bin/env node
// The `usher` command. Runs the compiled code in dist/ when it exists, else the TypeScript
// sources through tsx (a development checkout after `npm install`).
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli/main.js', import.meta.url);
let mod;
if (existsSync(dist)) {
  mod = await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
const code = await mod.main(process.argv.slice(2));
process.exitCode = code;
