/**
 * Five mesh nodes in five real processes, with default timings: they converge; a node whose
 * event loop is blocked for 5 s is never declared dead; a node killed with SIGKILL is declared
 * dead (its member down) everywhere within the configured window.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RegistryEvent, RegistrySnapshot } from '../../src/registry/registry.js';
import { eventually } from '../support/wait.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/mesh-node.ts', import.meta.url));

type Line = { at: number } & (
  | { type: 'ready'; node: string; port: number; address: string }
  | { type: 'event'; node: string; event: RegistryEvent }
  | { type: 'node'; node: string; change: { id: string; state: string; previous?: string; reason: string } }
  | { type: 'stalled'; node: string; ms: number }
  | { type: 'snapshot'; node: string; snapshot: RegistrySnapshot }
);

/** One node process and what it has printed. */
class NodeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: Line[] = [];
  stderr = '';
  /** Member health as this node reported it through its registry events. */
  readonly health = new Map<string, string>();
  /** Node states as this node reported them. */
  readonly nodeStates = new Map<string, string>();
  exited = false;

  constructor(
    readonly id: string,
    options: object,
  ) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', FIXTURE, JSON.stringify({ nodeId: id, ...options })],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.stdin.on('error', () => {});
    this.child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    createInterface({ input: this.child.stdout }).on('line', (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        return;
      }
      this.lines.push(line);
      if (line.type === 'node') this.nodeStates.set(line.change.id, line.change.state);
      if (line.type !== 'event') return;
      const e = line.event;
      if (e.type === 'member-added') this.health.set(e.member.id, 'up');
      if (e.type === 'health') this.health.set(e.id, e.health);
      if (e.type === 'member-removed') this.health.delete(e.id);
    });
  }

  async ready(): Promise<{ port: number; address: string }> {
    const line = await eventually(() => {
      assert.ok(!this.exited, `${this.id} exited early:\n${this.stderr}`);
      const ready = this.lines.find((l) => l.type === 'ready');
      assert.ok(ready, `${this.id} is not ready yet`);
      return ready;
    }, 30_000);
    return { port: line.port, address: line.address };
  }

  send(command: string): void {
    this.child.stdin.write(`${command}\n`);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

describe('mesh with five processes (default timings)', () => {
  const nodes: NodeProcess[] = [];
  after(() => {
    for (const node of nodes) node.kill();
  });

  const ids = ['p1', 'p2', 'p3', 'p4', 'p5'].map((p) => `${p}-${process.pid}`);
  const stalled = ids[2]!;
  const killed = ids[4]!;

  /** Lines (from every node) where `id` was reported dead, or its member down or removed. */
  function failuresReported(id: string): string[] {
    const out: string[] = [];
    for (const node of nodes) {
      for (const line of node.lines) {
        if (line.type === 'node' && line.change.id === id && line.change.state === 'dead') {
          out.push(`${node.id}: node ${id} dead (${line.change.reason})`);
        }
        if (line.type !== 'event') continue;
        const e = line.event;
        if (e.type === 'health' && e.id === id && e.health === 'down')
          out.push(`${node.id}: member down (${e.reason})`);
        if (e.type === 'member-removed' && e.id === id) out.push(`${node.id}: member removed (${e.reason})`);
      }
    }
    return out;
  }

  it('five nodes seeded with the first one converge to a full view', async () => {
    const first = new NodeProcess(ids[0]!, {});
    nodes.push(first);
    const { address } = await first.ready();
    for (const id of ids.slice(1)) nodes.push(new NodeProcess(id, { seeds: [address] }));
    await Promise.all(nodes.map((n) => n.ready()));
    await eventually(() => {
      for (const node of nodes) {
        for (const id of ids) {
          assert.equal(node.health.get(id), 'up', `${node.id} sees member ${id} up`);
        }
      }
    }, 20_000);
    // Their snapshots agree too.
    const views = await Promise.all(
      nodes.map(async (node) => {
        const before = node.lines.length;
        node.send('snapshot');
        const line = await eventually(() => {
          const found = node.lines.slice(before).find((l) => l.type === 'snapshot');
          assert.ok(found, `${node.id} printed its snapshot`);
          return found;
        });
        return line.snapshot.members.map((v) => `${v.member.id}:${v.health}`).sort();
      }),
    );
    const expected = [...ids].sort().map((id) => `${id}:up`);
    for (const view of views) assert.deepEqual(view, expected);
  });

  it('a node whose event loop is blocked for 5 s is never declared dead, and is alive and up afterwards', async (t) => {
    const node = nodes[2]!;
    assert.equal(node.id, stalled);
    node.send('stall 5000');
    await eventually(
      () =>
        assert.ok(
          node.lines.some((l) => l.type === 'stalled'),
          'stall finished',
        ),
      20_000,
    );
    await eventually(() => {
      for (const other of nodes) {
        assert.equal(other.health.get(stalled), 'up', `${other.id} sees member ${stalled} up`);
        const state = other.nodeStates.get(stalled);
        if (other !== node)
          assert.ok(state === undefined || state === 'alive', `${other.id} sees ${stalled} ${state}`);
      }
    }, 15_000);
    assert.deepEqual(failuresReported(stalled), []);
    const suspicions = nodes.filter((n) =>
      n.lines.some((l) => l.type === 'node' && l.change.id === stalled && l.change.state === 'suspect'),
    ).length;
    t.diagnostic(`${suspicions} of 4 nodes suspected ${stalled} during the stall`);
  });

  it('a node killed with SIGKILL is dead, its member down, on every other node within 3 s', async (t) => {
    const victim = nodes[4]!;
    assert.equal(victim.id, killed);
    const survivors = nodes.filter((n) => n !== victim);
    const killedAt = Date.now();
    victim.kill();
    await eventually(
      () => {
        for (const node of survivors) {
          assert.equal(node.nodeStates.get(killed), 'dead', `${node.id} sees ${killed} dead`);
          assert.equal(node.health.get(killed), 'down', `${node.id} sees member ${killed} down`);
        }
      },
      3_000,
      20,
    );
    const noticed = survivors.map((n) => {
      const line = n.lines.find(
        (l) => l.type === 'node' && l.change.id === killed && l.change.state === 'dead',
      );
      return line ? line.at - killedAt : Number.NaN;
    });
    t.diagnostic(`declared dead after ${noticed.join(', ')} ms`);
    // The stalled node stayed alive throughout.
    assert.deepEqual(failuresReported(stalled), []);
  });
});
