import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runUsher } from '../support/usher-process.js';

const dir = mkdtempSync(join(tmpdir(), 'usher-cli-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('usher CLI', () => {
  it('--version prints the package version', async () => {
    const r = await runUsher(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('--help lists the commands, and every command has its own --help', async () => {
    const r = await runUsher(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /run\s+run the roles/);
    assert.match(r.stdout, /validate\s+check a config/);
    for (const cmd of ['run', 'validate']) {
      const h = await runUsher([cmd, '--help']);
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, new RegExp(`^Usage: usher ${cmd} CONFIG`));
    }
  });

  it('an unknown flag or command prints usage and exits 2', async () => {
    const a = await runUsher(['validate', '--frobnicate', 'x.yaml']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /Unknown option '--frobnicate'/);
    assert.match(a.stderr, /Usage: usher <command>/);
    const b = await runUsher(['launch']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /unknown command: launch/);
    const c = await runUsher([]);
    assert.equal(c.code, 2);
  });

  it('validate accepts the demo config', async () => {
    const r = await runUsher(['validate', 'examples/demo.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /examples\/demo\.yaml: valid \(3 pools, 0 static members; roles: admin, assigner, list, demo\)/,
    );
  });

  it('validate --json prints the config with defaults filled in', async () => {
    const p = file('min.yaml', 'pools: { web: { members: [ { id: w1, port: 8080 } ] } }\n');
    const r = await runUsher(['validate', '--json', p]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(r.stdout);
    assert.equal(cfg.pools.web.members[0].weight, 1);
    assert.equal(cfg.pools.web.health.kind, 'tcp');
  });

  it('validate names the exact path and reason and exits 2', async () => {
    const p = file(
      'bad.yaml',
      'pools:\n  web:\n    members:\n      - { id: a, port: 1 }\n      - { id: b, port: 2 }\n      - { id: c, port: 70000 }\n',
    );
    const r = await runUsher(['validate', p]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pools\.web\.members\[2\]\.port: expected 1\.\.65535, got 70000/);
  });

  it('validate of a missing file or broken YAML exits 2 with the reason', async () => {
    const missing = await runUsher(['validate', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read config file \(ENOENT\)/);
    const broken = await runUsher(['validate', file('broken.yaml', 'pools: [\n')]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /not valid YAML/);
  });

  it('run with an invalid config exits 2 and starts nothing', async () => {
    const p = file('bad-run.yaml', 'admin: { port: 99999 }\n');
    const r = await runUsher(['run', p]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /admin\.port: expected 0\.\.65535, got 99999/);
    assert.doesNotMatch(r.stdout, /dashboard/);
  });
});
