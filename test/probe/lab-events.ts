/**
 * Shared by the probe lab tests: the JSON-lines events that the client fixtures print, and the
 * assigner's Prometheus counters read from inside its namespace.
 */
import assert from 'node:assert/strict';
import type { Host, LabProcess } from '../lab/lab.js';

export interface ClientEvent {
  event: string;
  at: number;
  member?: string;
  player?: string;
  count?: number;
  own?: number;
  distinct?: number;
  endpoint?: { address: string; port: number };
  stats?: { sent: number; received: number };
}

/** Every event a fixture has printed so far (one JSON object per stdout line). */
export function events(p: LabProcess): ClientEvent[] {
  return p.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ClientEvent);
}

/** The first event of `p` that matches, polling with a deadline. */
export async function waitEvent(
  p: LabProcess,
  what: string,
  match: (e: ClientEvent) => boolean,
  timeoutMs = 15000,
): Promise<ClientEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = events(p).find(match);
    if (e) return e;
    if (p.exit)
      assert.fail(`client exited (${JSON.stringify(p.exit)}) before ${what}\n${p.stdout}\n${p.stderr}`);
    if (Date.now() > deadline) assert.fail(`no ${what} within ${timeoutMs} ms\n${p.stdout}\n${p.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sum of the samples of a metric (name with labels as printed) on the admin API inside `host`. */
export async function metric(host: Host, adminPort: number, name: string): Promise<number> {
  const { stdout } = await host.exec('curl', ['-s', `http://127.0.0.1:${adminPort}/metrics`]);
  let total = 0;
  for (const line of stdout.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').pop());
  return total;
}
