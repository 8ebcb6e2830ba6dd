import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UsherProcess } from '../support/usher-process.js';
import { eventually } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'usher-run-'));
const configPath = join(dir, 'usher.yaml');

function writeConfig(members: string[], extra = ''): void {
  writeFileSync(
    configPath,
    `admin: { port: 0 }\nlog: { format: json }\npools:\n  web:\n    health: { kind: none }\n    members:\n${members
      .map((m, i) => `      - { id: ${m}, port: ${20000 + i} }`)
      .join('\n')}\n${extra}`,
  );
}

async function state(
  base: string,
): Promise<{ pools: { name: string; members: { id: string; health: string }[] }[] }> {
  const res = await fetch(`${base}/api/v1/state`);
  assert.equal(res.status, 200);
  return (await res.json()) as { pools: { name: string; members: { id: string; health: string }[] }[] };
}

async function memberIds(base: string): Promise<string[]> {
  const s = await state(base);
  return s.pools.flatMap((p) => p.members.map((m) => m.id)).sort();
}

describe('usher run', () => {
  const procs: UsherProcess[] = [];
  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
  });

  it('serves the admin API, reloads on SIGHUP, refuses a bad reload, drains on SIGTERM and exits 0', async () => {
    writeConfig(['w1', 'w2']);
    const token = 'test-token-123';
    const p = new UsherProcess(['run', configPath], { USHER_ADMIN_TOKEN: token });
    procs.push(p);
    const base = (await p.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+)\//))[1]!;

    const health = await fetch(`${base}/healthz`);
    assert.equal(await health.text(), 'ok');
    assert.deepEqual(await memberIds(base), ['w1', 'w2']);

    // SIGHUP with a changed file: w1 removed, w3 added.
    writeConfig(['w2', 'w3']);
    p.child.kill('SIGHUP');
    await eventually(async () => assert.deepEqual(await memberIds(base), ['w2', 'w3']), 10000);

    // SIGHUP with an invalid file: refused, the running config is kept.
    writeFileSync(configPath, 'pools: { web: { members: [ { id: x, port: 70000 } ] } }\n');
    p.child.kill('SIGHUP');
    await p.waitFor(
      /reload refused, running config kept.*pools\.web\.members\[0\]\.port: expected 1\.\.65535, got 70000/,
    );
    assert.deepEqual(await memberIds(base), ['w2', 'w3']);

    // SIGHUP with a change to a restart-only section: refused too.
    writeConfig(['w2', 'w3', 'w4'], 'registry: { kind: memory }\ndemo: { servers: [] }\n');
    p.child.kill('SIGHUP');
    await p.waitFor(/reload refused: demo: changes to this section need a restart/);
    assert.deepEqual(await memberIds(base), ['w2', 'w3']);

    // Reload through the admin API re-reads the file (fixed again).
    writeConfig(['w2', 'w3', 'w5']);
    const denied = await fetch(`${base}/api/v1/reload`, { method: 'POST' });
    assert.equal(denied.status, 401);
    const reload = await fetch(`${base}/api/v1/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(reload.status, 200, await reload.clone().text());
    assert.deepEqual(await memberIds(base), ['w2', 'w3', 'w5']);

    // Drain through the admin API.
    const drain = await fetch(`${base}/api/v1/members/w3/drain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(drain.status, 200);
    const s = await state(base);
    assert.equal(s.pools[0]?.members.find((m) => m.id === 'w3')?.health, 'draining');

    const exit = await p.stop('SIGTERM');
    assert.equal(exit.code, 0, p.stderr);
    assert.match(p.stderr, /stopped cleanly/);
    await assert.rejects(fetch(`${base}/healthz`), 'the admin port is closed after exit');
  });
});
