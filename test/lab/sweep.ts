/**
 * Run bookkeeping shared by every lab on the machine: run ids, owner markers, finding and
 * killing the processes inside namespaces, and sweeping what crashed runs left behind.
 *
 * Every lab namespace is called `ul<run-id>-<role>` (run id: 4 characters of a-z0-9). Before it
 * creates anything, a run claims its id by writing /run/usher-lab/<run-id>.json with its PID and
 * that process's start time. A namespace whose run has no marker, or whose marker names a
 * process that no longer exists, belongs to a crashed run and is swept; namespaces of runs that
 * are still alive (parallel test files, parallel suites) are left alone.
 *
 * Veths are always created directly inside lab namespaces, never in the root namespace, so
 * they vanish with their namespaces once the processes holding those namespaces are killed.
 */
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { debug, resolveCommand } from './process.js';

export const NETNS_DIR = '/run/netns';
export const MARKER_DIR = '/run/usher-lab';
/** Global prefix of every lab namespace; `ul` for Usher lab. */
export const GLOBAL_PREFIX = 'ul';
const NS_PATTERN = /^ul([a-z0-9]{4})-[a-z0-9-]+$/;
const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

interface Marker {
  pid: number;
  start: string;
}

/** Names of all named network namespaces on the machine (`ip netns list`, without forking). */
export function listNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR).sort();
  } catch {
    return [];
  }
}

/** Run id of a lab namespace name, or null if the name is not a lab's. */
export function runIdOf(ns: string): string | null {
  return NS_PATTERN.exec(ns)?.[1] ?? null;
}

/** Start time (clock ticks since boot, field 22 of /proc/<pid>/stat), null if gone or a zombie. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** True while `pid` is a running (not zombie) process. */
export function isAlive(pid: number): boolean {
  return startTime(pid) !== null;
}

function markerPath(id: string): string {
  return `${MARKER_DIR}/${id}.json`;
}

function readMarker(id: string): Marker | null {
  try {
    const m = JSON.parse(readFileSync(markerPath(id), 'utf8')) as Partial<Marker>;
    if (typeof m.pid === 'number' && typeof m.start === 'string') return { pid: m.pid, start: m.start };
  } catch {
    // missing or unreadable: treated as no owner
  }
  return null;
}

/** A run is alive while the process that claimed its id still runs. */
export function isRunAlive(id: string): boolean {
  const m = readMarker(id);
  return m !== null && startTime(m.pid) === m.start;
}

/** Claims a fresh run id for this process (atomically, with an exclusive create). */
export function claimRunId(): string {
  mkdirSync(MARKER_DIR, { recursive: true });
  const marker = JSON.stringify({ pid: process.pid, start: startTime(process.pid) ?? '' });
  const taken = new Set(listNamespaces().map(runIdOf));
  for (let attempt = 0; attempt < 100; attempt++) {
    let id = '';
    for (let i = 0; i < 4; i++) id += ID_CHARS[randomInt(ID_CHARS.length)];
    if (taken.has(id)) continue;
    // Written whole to a private file, then hard-linked into place: the link fails if the id is
    // taken, and a sweeper in another process never reads a half-written marker.
    const tmp = `${MARKER_DIR}/.${process.pid}.tmp`;
    writeFileSync(tmp, marker);
    try {
      linkSync(tmp, markerPath(id));
      return id;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  throw new Error('lab: could not claim a free run id in /run/usher-lab after 100 attempts');
}

export function releaseRunId(id: string): void {
  rmSync(markerPath(id), { force: true });
}

/** PIDs of the processes inside each named namespace (what `ip netns pids` does, for many at once). */
export function pidsInNamespaces(names: readonly string[]): Map<string, number[]> {
  const byInode = new Map<string, string>();
  const result = new Map<string, number[]>();
  // Never report the namespace we (or init) run in, even if a lab name got bound to it by
  // mistake: killing "everything inside" it would kill the machine's processes.
  const protectedNs = new Set<string>();
  for (const p of ['/proc/self/ns/net', '/proc/1/ns/net']) {
    try {
      const st = statSync(p);
      protectedNs.add(`${st.dev}:${st.ino}`);
    } catch {
      // not visible
    }
  }
  for (const name of names) {
    try {
      const st = statSync(`${NETNS_DIR}/${name}`);
      const key = `${st.dev}:${st.ino}`;
      if (protectedNs.has(key)) {
        debug(`${name} is bound to the root network namespace; not killing anything in it`);
        continue;
      }
      byInode.set(key, name);
      result.set(name, []);
    } catch {
      // already gone
    }
  }
  if (byInode.size === 0) return result;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      const name = byInode.get(`${st.dev}:${st.ino}`);
      if (name) result.get(name)!.push(Number(entry));
    } catch {
      // exited meanwhile, or a zombie
    }
  }
  return result;
}

/** SIGKILLs every process inside the namespaces; returns how many it signalled. */
export function killInNamespaces(names: readonly string[]): number {
  let n = 0;
  for (const pids of pidsInNamespaces(names).values()) {
    for (const pid of pids) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
        n++;
      } catch {
        // already gone
      }
    }
  }
  return n;
}

/** `ip netns del`, synchronously, ignoring a namespace that is already gone. */
export function deleteNamespaceSync(name: string): void {
  const r = spawnSync(resolveCommand('ip'), ['netns', 'del', name], { encoding: 'utf8' });
  if (r.status !== 0 && !/No such file/.test(r.stderr ?? ''))
    debug(`ip netns del ${name} failed: ${(r.stderr ?? '').trim()}`);
}

/**
 * Removes what crashed runs left: their processes, namespaces (and so their veths and bridges)
 * and markers. Runs whose owner still lives are untouched. Returns the namespaces it removed.
 */
export function sweepLeftovers(): string[] {
  const dead = listNamespaces().filter((ns) => {
    const id = runIdOf(ns);
    return id !== null && !isRunAlive(id);
  });
  if (dead.length > 0) {
    debug(`sweeping leftovers of crashed runs: ${dead.join(' ')}`);
    killInNamespaces(dead);
    for (const ns of dead) deleteNamespaceSync(ns);
  }
  let markers: string[] = [];
  try {
    markers = readdirSync(MARKER_DIR);
  } catch {
    // no marker directory yet
  }
  for (const file of markers) {
    const id = /^([a-z0-9]{4})\.json$/.exec(file)?.[1];
    if (id && !isRunAlive(id)) releaseRunId(id);
  }
  return dead;
}
