/**
 * Coordinators elected through etcd: three candidate processes, exactly one leads and all agree
 * on who; kill it with SIGKILL and another takes over when its lease expires; a candidate that
 * resigns hands over at once.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CoordinatorElection } from '../../src/registry/etcd/election.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';
import { type EtcdServer, startEtcd } from './fixtures/etcd-server.js';

const skip = needsCommands('etcd coordinator election', 'etcd');
const SCRIPT = fileURLToPath(new URL('./fixtures/etcd-candidate.ts', import.meta.url));

interface Candidate {
  id: string;
  child: ChildProcess;
  lines: Array<{ type: string; leader?: string | null; at: number; message?: string }>;
}

function candidate(args: { endpoint: string; prefix: string; role: string; candidate: string }): Candidate {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(args)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const c: Candidate = { id: args.candidate, child, lines: [] };
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      try {
        c.lines.push(JSON.parse(buffered.slice(0, nl)));
      } catch {}
      buffered = buffered.slice(nl + 1);
    }
  });
  child.stderr!.resume();
  return c;
}

const lastLeader = (c: Candidate) => [...c.lines].reverse().find((l) => l.type === 'leader')?.leader;
const electedCount = (c: Candidate) => c.lines.filter((l) => l.type === 'elected').length;
const story = (group: Candidate[]) =>
  group
    .map(
      (c) =>
        `${c.id}: ${c.lines.map((l) => `${l.type}${l.leader !== undefined ? `=${l.leader}` : ''}${l.message ? `(${l.message})` : ''}`).join(' ')}`,
    )
    .join('; ');

/** All agree on one leader, and that one was told it leads. */
function agreed(group: Candidate[]): Candidate {
  const seen = new Set(group.map(lastLeader));
  assert.equal(seen.size, 1, `all see the same leader: ${story(group)}`);
  const leader = group.find((c) => c.id === [...seen][0]);
  assert.ok(leader, `the leader is one of the candidates: ${story(group)}`);
  assert.ok(electedCount(leader) > 0, `${leader.id} was told it leads: ${story(group)}`);
  return leader;
}

describe('coordinator election through etcd', { skip }, () => {
  let etcd: EtcdServer;
  const children: ChildProcess[] = [];

  before(async () => {
    etcd = await startEtcd();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await etcd?.stop();
  });

  it('exactly one of three leads, all agree; killed, another takes over within the lease', async (t) => {
    const prefix = `/usher-test-${randomBytes(4).toString('hex')}/`;
    const candidates = ['c1', 'c2', 'c3'].map((id) =>
      candidate({ endpoint: etcd.endpoint, prefix, role: 'cluster/web', candidate: id }),
    );
    children.push(...candidates.map((c) => c.child));
    const leader = await eventually(() => agreed(candidates), 20_000, 50);
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const rest = candidates.filter((c) => c !== leader);
    const next = await eventually(() => agreed(rest), 15_000, 50);
    t.diagnostic(
      `${next.id} took over ${Date.now() - killedAt} ms after ${leader.id} was killed (lease 2 s)`,
    );
    // A graceful stop (stdin closed: resign) hands over to the last candidate.
    const last = rest.find((c) => c !== next)!;
    next.child.stdin!.end();
    await eventually(
      () => assert.ok(electedCount(last) > 0, `${last.id} elected after the resignation`),
      10_000,
      50,
    );
  });

  it('refuses bad options naming them', async () => {
    await assert.rejects(
      CoordinatorElection.start({ endpoints: [etcd.endpoint], role: 'bad role!', candidate: 'x' }),
      /role: expected/,
    );
    await assert.rejects(
      CoordinatorElection.start({ endpoints: [etcd.endpoint], role: 'r', candidate: '' }),
      /candidate: expected a non-empty name/,
    );
  });
});
