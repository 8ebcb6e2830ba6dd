import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

describe('package surface', () => {
  it('the client SDK bundles for browsers with no Node-only import', async () => {
    const result = await build({
      entryPoints: ['src/client/index.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.length > 3, 'the bundle pulls in the core');
    const nodeOnly = inputs.filter((i) => i.startsWith('node:') || i.includes('node_modules'));
    assert.deepEqual(nodeOnly, [], 'no Node built-ins or server dependencies in the client bundle');
    const code = result.outputFiles[0]!.text;
    const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as {
      createPolicy: (n: string) => { pick(r: unknown): { id: string } | undefined };
      makeMember: (m: { id: string }) => unknown;
    };
    const p = mod.createPolicy('round-robin');
    const members = ['a', 'b'].map((id) => ({ member: mod.makeMember({ id }), health: 'up' }));
    assert.deepEqual([p.pick({ members })?.id, p.pick({ members })?.id], ['a', 'b']);
  });

  it('the server API exports the documented entry points', async () => {
    const api = await import('../../src/index.js');
    for (const name of [
      'Usher',
      'MemoryRegistry',
      'MeshRegistry',
      'ListService',
      'StreamServer',
      'ProbeAgent',
      'createAdminServer',
      'Metrics',
      'createPolicy',
      'validateConfig',
    ]) {
      assert.equal(typeof (api as Record<string, unknown>)[name], 'function', name);
    }
  });

  it('compiles to JavaScript with declarations, and the compiled CLI runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'usher-build-'));
    try {
      const out = join(dir, 'dist');
      const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      // dist/ sits next to package.json and node_modules in a real install.
      symlinkSync(resolve('package.json'), join(dir, 'package.json'));
      symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
      const cli = (await import(pathToFileURL(join(out, 'cli', 'main.js')).href)) as {
        main(argv: string[], io: { stdout: Writable; stderr: Writable }): Promise<number>;
      };
      let printed = '';
      const sink = new Writable({
        write(chunk, _enc, cb) {
          printed += chunk;
          cb();
        },
      });
      assert.equal(
        await cli.main(['validate', 'examples/demo.yaml'], { stdout: sink, stderr: sink }),
        0,
        printed,
      );
      assert.match(printed, /valid/);
      const types = spawnSync('ls', [join(out, 'index.d.ts'), join(out, 'client', 'index.d.ts')]);
      assert.equal(types.status, 0, 'type declarations for both entry points');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
