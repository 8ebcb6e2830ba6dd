/**
 * A lab host: one network namespace, with what tests do inside it — run commands, start
 * long-running programs, add addresses and routes, turn it into a router or a NAT.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { type Address, checkTestAddress, type Family, familyOf, parseCidr } from './net.js';
import {
  type ExecOptions,
  type ExecResult,
  execCommand,
  formatCommand,
  LabProcess,
  labEnv,
  type ProcessTracker,
  resolveCommand,
  type SpawnProcessOptions,
} from './process.js';

/** What a host needs from its lab. */
export interface HostContext extends ProcessTracker {
  assertOpen(): void;
}

export interface RouteOptions {
  /** Output interface, when the gateway alone is ambiguous. */
  dev?: string;
}

export class Host {
  /** Interfaces the lab created here, in creation order, with the addresses it assigned. */
  readonly #interfaces = new Map<string, Address[]>();
  #ifCount = 0;
  #router = false;

  constructor(
    /** Role name given to `lab.host()`, e.g. `client`. */
    readonly name: string,
    /** Network namespace name, e.g. `ulk3x9-client`. */
    readonly ns: string,
    readonly ctx: HostContext,
  ) {}

  /** Runs `cmd` inside the namespace; rejects on non-zero exit unless `{ reject: false }`. */
  exec(cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    this.ctx.assertOpen();
    const argv = ['ip', 'netns', 'exec', this.ns, resolveCommand(cmd), ...args];
    return execCommand(argv, this.name, opts, this.ctx, [cmd, ...args]);
  }

  /** Runs `ip -n <ns> ...args` (no extra process inside the namespace). */
  ip(args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.ctx.assertOpen();
    return execCommand(['ip', '-n', this.ns, ...args], this.name, opts, this.ctx);
  }

  /** Runs several `ip` commands in one process (`ip -batch -`); stops at the first failure. */
  async ipBatch(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    this.ctx.assertOpen();
    await execCommand(
      ['ip', '-n', this.ns, '-batch', '-'],
      this.name,
      { input: `${lines.join('\n')}\n` },
      this.ctx,
    );
  }

  /** Starts a long-running program inside the namespace; the lab kills it on close. */
  spawn(cmd: string, args: string[] = [], opts: SpawnProcessOptions = {}): LabProcess {
    this.ctx.assertOpen();
    const argv = [resolveCommand(cmd), ...args];
    const child: ChildProcess = spawn(resolveCommand('ip'), ['netns', 'exec', this.ns, ...argv], {
      stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
      env: labEnv(opts.env),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    this.ctx.track(child);
    return new LabProcess(child, `${this.name}: ${formatCommand([cmd, ...args])}`);
  }

  /** Sets sysctls inside the namespace, e.g. `{ 'net.ipv4.ip_forward': 1 }`. */
  async sysctl(settings: Record<string, string | number>): Promise<void> {
    const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
    if (args.length > 0) await this.exec('sysctl', ['-q', '-w', ...args]);
  }

  /** Loads an nftables ruleset (the text `nft -f` reads) inside the namespace. */
  async nft(ruleset: string): Promise<void> {
    await this.exec('nft', ['-f', '-'], { input: ruleset });
  }

  /** Names the next interface the lab creates here: eth0, eth1, ... */
  nextIfname(): string {
    let name: string;
    do name = `eth${this.#ifCount++}`;
    while (this.#interfaces.has(name));
    return name;
  }

  /** Records an interface the lab created (used by `lab.link` and `lab.attach`). */
  registerInterface(ifname: string): void {
    if (this.#interfaces.has(ifname))
      throw new Error(`lab: host ${this.name} already has an interface ${ifname}`);
    this.#interfaces.set(ifname, []);
  }

  /** `ip` batch lines that assign `cidrs` to `ifname` (IPv6 with `nodad`: usable at once). */
  addressLines(ifname: string, cidrs: string[]): string[] {
    const list = this.#interfaces.get(ifname);
    if (!list) throw new Error(`lab: host ${this.name} has no interface ${ifname} created by the lab`);
    return cidrs.map((cidr) => {
      const a = parseCidr(cidr, ifname);
      list.push(a);
      return `address add ${a.cidr} dev ${ifname}${a.family === 6 ? ' nodad' : ''}`;
    });
  }

  /** Adds an address (e.g. a virtual IP) to an interface the lab created, or to `lo`. */
  async addAddress(ifname: string, cidr: string): Promise<void> {
    if (ifname === 'lo' && !this.#interfaces.has('lo')) this.#interfaces.set('lo', []);
    await this.ipBatch(this.addressLines(ifname, [cidr]));
  }

  /** Every address the lab assigned here, or only those on `ifname`. */
  addrs(ifname?: string): Address[] {
    if (ifname !== undefined) {
      const list = this.#interfaces.get(ifname);
      if (!list) throw new Error(`lab: host ${this.name} has no interface ${ifname} created by the lab`);
      return [...list];
    }
    return [...this.#interfaces.values()].flat();
  }

  /**
   * The host's first address (on `ifname` if given) of `family` (default: IPv4 if it has one,
   * else IPv6), bare, without the prefix length.
   */
  addr(ifname?: string, family?: Family): string {
    const list = this.addrs(ifname);
    const pick =
      family !== undefined
        ? list.find((a) => a.family === family)
        : (list.find((a) => a.family === 4) ?? list.find((a) => a.family === 6));
    if (!pick)
      throw new Error(
        `lab: host ${this.name} has no ${family ? `IPv${family} ` : ''}address${ifname ? ` on ${ifname}` : ''}`,
      );
    return pick.address;
  }

  /** Interface names the lab created here. */
  interfaces(): string[] {
    return [...this.#interfaces.keys()].filter((n) => n !== 'lo');
  }

  /** Routes `dest` (a prefix, an address or `default`) via the gateway `via`. */
  async route(dest: string, via: string, opts: RouteOptions = {}): Promise<void> {
    checkTestAddress(via);
    const family = familyOf(via);
    const args = [`-${family}`, 'route', 'replace', dest, 'via', via];
    if (opts.dev) args.push('dev', opts.dev);
    await this.ip(args);
  }

  /** Default route (IPv4 or IPv6, after the gateway's family) via `via`. */
  defaultRoute(via: string, opts: RouteOptions = {}): Promise<void> {
    return this.route('default', via, opts);
  }

  /**
   * Makes this host a router: IPv4 and IPv6 forwarding on, and reverse-path filtering off on
   * all, default and every interface (a router in a lab sees asymmetric and rewritten traffic
   * that strict rp_filter would drop as martian). Idempotent.
   */
  async router(): Promise<void> {
    const settings: Record<string, number> = {
      'net.ipv4.ip_forward': 1,
      'net.ipv6.conf.all.forwarding': 1,
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
      'net.ipv4.conf.lo.rp_filter': 0,
    };
    for (const ifname of this.interfaces())
      settings[`net.ipv4.conf.${ifname.replace(/\./g, '/')}.rp_filter`] = 0;
    await this.sysctl(settings);
    this.#router = true;
  }

  /** True once `router()` (or `masquerade()`) ran. */
  get isRouter(): boolean {
    return this.#router;
  }

  /**
   * Makes this host a NAT: a router that masquerades (source-NATs to its own address) every
   * connection leaving through `outIfname`, IPv4 and IPv6, with an nftables table of its own.
   */
  async masquerade(outIfname: string): Promise<void> {
    if (!this.#interfaces.has(outIfname))
      throw new Error(`lab: host ${this.name} has no interface ${outIfname} created by the lab`);
    await this.router();
    await this.nft(
      [
        'table inet usher_lab_nat {',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    oifname "${outIfname}" masquerade`,
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  }
}
