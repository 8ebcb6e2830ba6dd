import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ProbeMember } from '../../src/probe/member.js';
import { FakeAssigner } from '../probe/fake-assigner.js';
import { runUsher } from '../support/usher-process.js';
import { eventually } from '../support/wait.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function placement(): Promise<{ member: ProbeMember; assigner: FakeAssigner; balancer: string }> {
  const member = new ProbeMember({
    id: 'm-cli',
    app: 'game',
    site: 'eu-1',
    incarnations: ['world-1', 'world-2'],
  });
  await member.start();
  cleanups.push(() => member.close());
  const assigner = await FakeAssigner.start({}, { id: member.id, endpoint: member.address });
  cleanups.push(() => assigner.close());
  return { member, assigner, balancer: `127.0.0.1:${assigner.endpoint.port}` };
}

describe('usher probe', () => {
  it('prints the assignment from the member that answered, and ends the session (BYE)', async () => {
    const { member, balancer } = await placement();
    const ended: string[] = [];
    member.on('end', (s, reason) => ended.push(`${s.incarnation}:${reason}`));
    const r = await runUsher(['probe', '--balancer', balancer, '--app', 'game', '--incarnation', 'world-2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^member\s+m-cli$/m);
    assert.match(r.stdout, new RegExp(`^address\\s+127\\.0\\.0\\.1:${member.address.port}$`, 'm'));
    assert.match(r.stdout, /^app\s+game$/m);
    assert.match(r.stdout, /^incarnation\s+world-2$/m);
    assert.match(r.stdout, /^site\s+eu-1$/m);
    assert.match(r.stdout, /^session\s+[0-9a-f]{32}$/m);
    await eventually(() => assert.deepEqual(ended, ['world-2:bye']));
  });

  it('--json prints the assignment as JSON', async () => {
    const { member, balancer } = await placement();
    const r = await runUsher(['probe', '--balancer', balancer, '--app', 'game', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout);
    assert.deepEqual(
      { ...a, session: undefined },
      {
        member: 'm-cli',
        endpoint: member.address,
        session: undefined,
        app: 'game',
        incarnation: 'world-1',
        site: 'eu-1',
      },
    );
    assert.match(a.session, /^[0-9a-f]{32}$/);
  });

  it('exits 1 with a clear message when nothing answers in time, or the assigner refuses', async () => {
    const silent = await FakeAssigner.start({ silent: true });
    cleanups.push(() => silent.close());
    const balancer = `127.0.0.1:${silent.endpoint.port}`;
    const r = await runUsher(['probe', '--balancer', balancer, '--app', 'game', '--timeout', '300']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `usher: no answer from ${balancer} within 300 ms\n`);
    assert.equal(r.stdout, '');
    assert.equal(silent.count, 3, 'three probes within the timeout');

    const refusing = await FakeAssigner.start({ errorCode: 1 });
    cleanups.push(() => refusing.close());
    const n = await runUsher(['probe', '--balancer', `127.0.0.1:${refusing.endpoint.port}`, '--app', 'nope']);
    assert.equal(n.code, 1);
    assert.match(n.stderr, /refused: unknown app/);
  });

  it('bad usage exits 2: a bad --balancer, a missing --app, a bad --timeout', async () => {
    const bad = await runUsher(['probe', '--balancer', 'nowhere', '--app', 'game']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--balancer: expected HOST:PORT/);
    assert.match(bad.stderr, /Usage: usher <command>/);
    const noApp = await runUsher(['probe', '--balancer', '127.0.0.1:9']);
    assert.equal(noApp.code, 2);
    assert.match(noApp.stderr, /--app NAME is required/);
    const badTimeout = await runUsher([
      'probe',
      '--balancer',
      '127.0.0.1:9',
      '--app',
      'g',
      '--timeout',
      'soon',
    ]);
    assert.equal(badTimeout.code, 2);
    assert.match(badTimeout.stderr, /--timeout: expected a whole number/);
  });

  it('has its own --help and is listed in usher --help', async () => {
    const h = await runUsher(['probe', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^Usage: usher probe --balancer HOST:PORT --app NAME/);
    assert.match((await runUsher(['--help'])).stdout, /probe\s+ask a probe assigner/);
  });
});
