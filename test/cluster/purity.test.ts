import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Every module `file` imports, directly or not (relative imports followed; `.js` read as `.ts`). */
function importGraph(file: string, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(file)) return seen;
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
  seen.set(file, specifiers);
  for (const s of specifiers) {
    if (s.startsWith('.')) importGraph(resolve(dirname(file), s.replace(/\.js$/, '.ts')), seen);
  }
  return seen;
}

describe('cluster: pure modules', () => {
  for (const name of ['value', 'plan']) {
    it(`src/cluster/${name}.ts imports nothing outside the package and nothing from node:, directly or not`, () => {
      const graph = importGraph(resolve(root, `src/cluster/${name}.ts`));
      for (const [file, specifiers] of graph) {
        for (const s of specifiers) {
          assert.ok(s.startsWith('.'), `${file.slice(root.length + 1)} imports ${s}`);
        }
      }
      assert.ok(graph.size >= 3, 'the walk found the imports');
    });
  }
});
