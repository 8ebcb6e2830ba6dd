/**
 * The network lab: hosts in Linux network namespaces, joined by veth pairs and bridges, with
 * real programs running inside. Everything lives in namespaces named `ul<run-id>-<role>`; the
 * root namespace's interfaces, addresses and routes are never touched.
 *
 *   const lab = await createLab();
 *   after(() => lab.close());
 *   const [client, server] = await Promise.all([lab.host('client'), lab.host('server')]);
 *   await lab.link(client, server, { a: '10.200.1.1/24', b: '10.200.1.2/24' });
 *   const echo = server.spawn('socat', ['TCP-LISTEN:7000,fork', 'SYSTEM:echo hi $SOCAT_PEERADDR']);
 *   await echo.waitForPort(7000);
 *   const { stdout } = await client.exec('socat', ['-', `TCP:${server.addr()}:7000`]);
 *   // stdout === 'hi 10.200.1.1\n'
 *
 * See sweep.ts for how runs claim ids and how crashed runs are swept.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { needsCommands, needsRoot } from '../support/env.js';
import { Host } from './host.js';
import { type Address, checkIfname, checkMac, checkRole, parseCidr, toList } from './net.js';
import { debug, execCommand, resolveCommand } from './process.js';
import {
  claimRunId,
  deleteNamespaceSync,
  GLOBAL_PREFIX,
  killInNamespaces,
  listNamespaces,
  pidsInNamespaces,
  releaseRunId,
  sweepLeftovers,
} from './sweep.js';

export { Host, type RouteOptions } from './host.js';
export type { Address, Family } from './net.js';
export {
  type ExecOptions,
  type ExecResult,
  LabExecError,
  LabProcess,
  type LineWaitOptions,
  type PortWaitOptions,
  type ProcessExit,
  type SpawnProcessOptions,
} from './process.js';
export { isAlive, listNamespaces, sweepLeftovers } from './sweep.js';

export interface LabOptions {
  /** Sweep what crashed earlier runs left behind before starting (default true). */
  sweep?: boolean;
}

/** One end of a veth pair. */
export interface Endpoint {
  host: Host;
  ifname: string;
  addrs: Address[];
}

export interface Link {
  a: Endpoint;
  b: Endpoint;
}

export interface LinkOptions {
  /** Address(es) for a's end, e.g. `10.200.1.1/24` or `['10.200.1.1/24', 'fd00:7573:1::1/64']`. */
  a?: string | string[];
  b?: string | string[];
  mac?: { a?: string; b?: string };
  /** Interface names (default: the next free ethN on each host). */
  ifnames?: { a?: string; b?: string };
}

export interface BridgeOptions {
  /**
   * Flood every frame to every port, like a hub: `ageing_time 0` and learning off on each
   * port, so the bridge never learns where a MAC lives; multicast snooping off as well.
   */
  hub?: boolean;
}

export interface AttachOptions {
  addr?: string | string[];
  mac?: string;
  ifname?: string;
}

/** A host's port on a bridge: the host end plus the port's name inside the bridge namespace. */
export interface Attachment extends Endpoint {
  port: string;
}

/** A Linux bridge `br0` living in a namespace of its own (`bridge.host` runs commands there). */
export class Bridge {
  readonly dev = 'br0';
  #ports = 0;

  constructor(
    readonly name: string,
    readonly host: Host,
    readonly hub: boolean,
  ) {}

  get ns(): string {
    return this.host.ns;
  }

  nextPort(role: string): string {
    return `p${this.#ports++}-${role}`.slice(0, 15);
  }
}

const openLabs = new Set<Lab>();
let handlersInstalled = false;

function closeAllSync(): void {
  for (const lab of [...openLabs]) lab.closeSync();
}

function onSignal(signal: NodeJS.Signals): void {
  closeAllSync();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Nobody else handles it: die of the signal as if we had not been listening.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', closeAllSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

const CLOSE_DEADLINE_MS = 10_000;

export class Lab {
  /** Namespace name prefix of this run, e.g. `ulk3x9-`. */
  readonly prefix: string;
  readonly #children = new Set<ChildProcess>();
  readonly #namespaces: string[] = [];
  readonly #hosts = new Map<string, Host>();
  #closing: Promise<void> | null = null;
  #closed = false;

  constructor(
    /** Run id, 4 characters of a-z0-9. */
    readonly id: string,
  ) {
    this.prefix = `${GLOBAL_PREFIX}${id}-`;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Names of every namespace this lab created (hosts and bridges). */
  namespaces(): string[] {
    return [...this.#namespaces];
  }

  /** PIDs of the children the lab started that have not exited yet. */
  pids(): number[] {
    return [...this.#children].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  track(child: ChildProcess): void {
    this.#children.add(child);
    const forget = () => this.#children.delete(child);
    child.once('exit', forget);
    child.once('error', forget);
  }

  assertOpen(): void {
    if (this.#closing) throw new Error(`lab ${this.prefix}: already closed`);
  }

  async #namespace(role: string): Promise<Host> {
    checkRole(role);
    this.assertOpen();
    if (this.#hosts.has(role)) throw new Error(`lab: there is already a host or bridge called ${role}`);
    const ns = `${this.prefix}${role}`;
    const host = new Host(role, ns, this);
    this.#hosts.set(role, host);
    this.#namespaces.push(ns); // before creating it, so close() removes it even if setup fails
    await execCommand(['ip', 'netns', 'add', ns], role, {}, this);
    await host.ip(['link', 'set', 'lo', 'up']);
    // No duplicate address detection: addresses (link-local ones too) are usable at once.
    await host.sysctl({ 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 });
    return host;
  }

  /** A new host: a namespace with `lo` up. */
  host(name: string): Promise<Host> {
    return this.#namespace(name);
  }

  /** A bridge `br0` in a namespace of its own; `{ hub: true }` floods every frame to every port. */
  async bridge(name: string, opts: BridgeOptions = {}): Promise<Bridge> {
    const host = await this.#namespace(name);
    const hub = opts.hub ?? false;
    // The bridge namespace only switches frames: no IPv6 chatter from its ports.
    await host.sysctl({ 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
    const add = `link add br0 type bridge${hub ? ' ageing_time 0 mcast_snooping 0' : ''}`;
    await host.ipBatch([add, 'link set br0 up']);
    return new Bridge(name, host, hub);
  }

  /** A veth pair between `a` and `b`, both ends up, with the given addresses. */
  async link(a: Host, b: Host, opts: LinkOptions = {}): Promise<Link> {
    this.#own(a);
    this.#own(b);
    if (a === b) throw new Error(`lab: cannot link host ${a.name} to itself`);
    if (opts.mac?.a) checkMac(opts.mac.a);
    if (opts.mac?.b) checkMac(opts.mac.b);
    for (const cidr of [...toList(opts.a), ...toList(opts.b)]) parseCidr(cidr, '');
    const ifA = opts.ifnames?.a ?? a.nextIfname();
    const ifB = opts.ifnames?.b ?? b.nextIfname();
    checkIfname(ifA);
    checkIfname(ifB);
    a.registerInterface(ifA);
    b.registerInterface(ifB);
    const linesA = a.addressLines(ifA, toList(opts.a));
    const linesB = b.addressLines(ifB, toList(opts.b));
    // Created inside a's namespace with the peer placed straight into b's: never in the root one.
    const macA = opts.mac?.a ? ['address', opts.mac.a] : [];
    const macB = opts.mac?.b ? ['address', opts.mac.b] : [];
    await a.ip(['link', 'add', ifA, ...macA, 'type', 'veth', 'peer', 'name', ifB, ...macB, 'netns', b.ns]);
    // Up first, then addresses: an IPv6 address added while the link is down does not join its
    // solicited-node group when the link comes up, and the first neighbour solicitation is lost.
    await Promise.all([
      a.ipBatch([`link set ${ifA} up`, ...linesA]),
      b.ipBatch([`link set ${ifB} up`, ...linesB]),
    ]);
    return {
      a: { host: a, ifname: ifA, addrs: a.addrs(ifA) },
      b: { host: b, ifname: ifB, addrs: b.addrs(ifB) },
    };
  }

  /** Plugs `host` into `bridge` with a new veth pair. */
  async attach(host: Host, bridge: Bridge, opts: AttachOptions = {}): Promise<Attachment> {
    this.#own(host);
    this.#own(bridge.host);
    if (opts.mac) checkMac(opts.mac);
    for (const cidr of toList(opts.addr)) parseCidr(cidr, '');
    const ifname = opts.ifname ?? host.nextIfname();
    checkIfname(ifname);
    const port = bridge.nextPort(host.name);
    host.registerInterface(ifname);
    bridge.host.registerInterface(port);
    const lines = host.addressLines(ifname, toList(opts.addr));
    const mac = opts.mac ? ['address', opts.mac] : [];
    await host.ip(['link', 'add', ifname, ...mac, 'type', 'veth', 'peer', 'name', port, 'netns', bridge.ns]);
    const portLines = [`link set ${port} master ${bridge.dev}`];
    if (bridge.hub) portLines.push(`link set ${port} type bridge_slave learning off`);
    portLines.push(`link set ${port} up`);
    await Promise.all([host.ipBatch([`link set ${ifname} up`, ...lines]), bridge.host.ipBatch(portLines)]);
    return { host, ifname, addrs: host.addrs(ifname), port };
  }

  #own(host: Host): void {
    if (this.#hosts.get(host.name) !== host) throw new Error(`lab: host ${host.name} belongs to another lab`);
  }

  /**
   * Tears everything down: kills every process the lab started and everything else running in
   * its namespaces, waits for them to exit, deletes the namespaces (their veths and bridges go
   * with them) and releases the run id. Rejects if something could not be removed. Safe to call
   * twice; also runs on process exit, SIGINT and SIGTERM.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const names = this.namespaces();
    const deadline = Date.now() + CLOSE_DEADLINE_MS;
    // Kill, then poll (with a deadline) until our children have exited (reaped: `exit` seen) and
    // nothing runs in the namespaces any more (grandchildren too), killing again what appeared.
    for (;;) {
      for (const c of this.#children) c.kill('SIGKILL');
      const signalled = killInNamespaces(names);
      const left = [...pidsInNamespaces(names).values()].flat();
      if (signalled === 0 && left.length === 0 && this.#children.size === 0) break;
      if (Date.now() > deadline) {
        debug(`close ${this.prefix}: still running after ${CLOSE_DEADLINE_MS} ms: ${left.join(' ')}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(
      names.map((ns) =>
        execCommand(['ip', 'netns', 'del', ns], ns, { reject: false }, null).then((r) => {
          if (r.code !== 0 && !/No such file/.test(r.stderr)) debug(`ip netns del ${ns}: ${r.stderr.trim()}`);
        }),
      ),
    );
    this.#closed = true;
    openLabs.delete(this); // only now: a signal during close() still tears down synchronously
    releaseRunId(this.id);
    const leftNs = listNamespaces().filter((ns) => ns.startsWith(this.prefix));
    const leftPids = this.pids();
    if (leftNs.length > 0 || leftPids.length > 0)
      throw new Error(
        `lab ${this.prefix}: close left namespaces [${leftNs.join(' ')}] and processes [${leftPids.join(' ')}]`,
      );
  }

  /** Synchronous teardown for process exit and signals: SIGKILL everything, delete namespaces. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closing ??= Promise.resolve();
    openLabs.delete(this);
    for (const c of this.#children) c.kill('SIGKILL');
    const names = this.namespaces();
    killInNamespaces(names);
    for (const ns of names) deleteNamespaceSync(ns);
    releaseRunId(this.id);
    this.#closed = true;
  }
}

/**
 * A new lab with its own run id. Unless `{ sweep: false }`, first removes what crashed earlier
 * runs left (their processes and namespaces; runs still alive are untouched).
 */
export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const reason = labAvailable();
  if (reason) throw new Error(reason);
  if (options.sweep !== false) sweepLeftovers();
  installHandlers();
  const lab = new Lab(claimRunId());
  openLabs.add(lab);
  debug(`lab ${lab.prefix} opened`);
  return lab;
}

let probed: string | false | undefined;

/** Whether this process may create network namespaces (tried once, with `unshare -n`). */
function netnsReason(): string | false {
  if (probed !== undefined) return probed;
  const unshare = resolveCommand('unshare');
  if (!unshare.includes('/')) {
    probed = false; // cannot tell without it; `ip netns add` will say
    return probed;
  }
  const r = spawnSync(unshare, ['-n', 'true'], { encoding: 'utf8' });
  probed =
    r.status === 0
      ? false
      : `network lab: cannot create network namespaces (${(r.stderr || r.error?.message || '').trim()})`;
  return probed;
}

/**
 * False when the lab can run here, else a one-line reason for `{ skip: reason }`: not Linux, not
 * root, no `ip`, namespaces not permitted, or one of the extra `commands` the test needs missing.
 */
export function labAvailable(...commands: string[]): string | false {
  return needsRoot('network lab') || needsCommands('network lab', 'ip', ...commands) || netnsReason();
}
