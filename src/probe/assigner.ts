/**
 * The probe assigner (seed 000: P0.2, P0.3, P0.4, P0.6): one UDP socket at the site's public
 * address. A client's PROBE names an app; the assigner chooses a member of the app's pool with
 * the pool's policy and then steps out of the way:
 * - `forward` mode (P0.2): it passes the probe on to the member as FORWARD, carrying the
 *   client's observed endpoint, and the member answers the client directly;
 * - `answer` mode (P0.3): it answers the client with PROBE_RESPONSE (the member's own
 *   endpoint) and tells the member with NOTIFY.
 * A CATALOG lists the apps and their incarnations (P0.6).
 *
 * The client is always the source the socket saw (P0.4: its NAT's address), never an address
 * from the payload. Nothing is ever sent to a client that is larger than the datagram it sent,
 * unless that datagram carried a valid cookie (docs/protocols/probe.md, "Never an amplifier"):
 * every send to a client goes through `Replies.toClient` (replies.ts), which enforces it. Bad input is counted
 * (`usher_probe_dropped_total{reason}`) and dropped; no datagram can throw out of here.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { Metrics } from '../admin/metrics.js';
import type { AssignerConfig } from '../config/schema.js';
import { hashKey } from '../core/hash.js';
import type { Member, MemberView } from '../core/model.js';
import type { PickRequest, Policy } from '../core/policy/policy.js';
import { InvalidArgumentError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/logger.js';
import { unmapIPv4 } from './address.js';
import { AssignerStats, type AssignerSummary as StatsSummary } from './assigner-stats.js';
import { buildCatalog, type CatalogBody, forIncarnation } from './catalog.js';
import { decode, isProbeDatagram } from './codec.js';
import { CookieJar } from './cookie.js';
import { type Endpoint, ErrorCode } from './messages.js';
import { PoolView } from './pool-view.js';
import { RateLimiter } from './rate-limit.js';
import { type MemberTarget, Replies, type Request } from './replies.js';
import { SiteStats, type SitesSummary } from './site-stats.js';
import { place } from './sites.js';
import { AnswerTemplates, type ToMember } from './templates.js';
import { SessionTokens } from './tokens.js';

/** The role summary: the counters of assigner-stats.ts, and clients placed on other sites (P0.9). */
export interface AssignerSummary extends StatsSummary {
  readonly sites: SitesSummary;
}

export interface AssignerOptions {
  readonly config: AssignerConfig;
  readonly registry: Registry;
  /**
   * The current policy of a pool (`Usher.policyFor`). Asked once per pool and kept until
   * `reconfigure`: the object it returns must follow reloads that leave the assigner section
   * alone (Usher's delegates to the pool's current policy, and every reload reconfigures).
   */
  readonly policyFor: (pool: string) => Policy;
  /**
   * A new policy configured like the pool's, for the members of one declared incarnation: a
   * policy with a cursor or a table (round robin, maglev) shared between subsets would favour
   * some members. Without it, the pool's policy picks among the subset. Those policies are
   * rebuilt on `reconfigure`.
   */
  readonly newPolicy?: (pool: string) => Policy | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Cookie secret; by default USHER_PROBE_SECRET, else random per process. */
  readonly secret?: string | Uint8Array;
  /** Clock in milliseconds (rate limits, cookies, the assignment rate); `Date.now` by default. */
  readonly now?: () => number;
  /** Sources the rate limiter remembers at most (default 100 000). */
  readonly maxSources?: number;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

export class Assigner {
  #config: AssignerConfig;
  readonly #registry: Registry;
  readonly #policyFor: (pool: string) => Policy;
  readonly #newPolicy: ((pool: string) => Policy | undefined) | undefined;
  /** Policies per declared incarnation: `app\0incarnation` → policy. */
  #incarnationPolicies = new Map<string, Policy>();
  /** `policyFor(pool)` per pool, asked once and again after `reconfigure`. */
  #poolPolicies = new Map<string, Policy>();
  readonly #tokens = new SessionTokens();
  readonly #templates = new AnswerTemplates();
  readonly #picker = new Picker();
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #stats: AssignerStats;
  readonly #sites: SiteStats;
  readonly #limiter: RateLimiter;
  readonly #cookies: CookieJar;
  readonly #view: PoolView;
  #socket: dgram.Socket | undefined;
  #replies: Replies | undefined;
  #bound: BoundAddress | undefined;
  #closing: Promise<void> | undefined;
  /** The catalog body, rebuilt when the registry view or the config changes. */
  #catalog: { revision: number; config: AssignerConfig; body: CatalogBody } | undefined;
  /** `config.apps` as a Map, with the config it was made from (`#appsOf`). */
  #apps: { config: AssignerConfig | undefined; map: Map<string, AssignerConfig['apps'][string]> } = {
    config: undefined,
    map: new Map(),
  };

  constructor(options: AssignerOptions) {
    this.#config = options.config;
    this.#registry = options.registry;
    this.#policyFor = options.policyFor;
    this.#newPolicy = options.newPolicy;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#stats = new AssignerStats(options.metrics);
    this.#sites = new SiteStats(options.metrics);
    this.#limiter = new RateLimiter({
      perSecond: options.config.rateLimit.perSecond,
      burst: options.config.rateLimit.burst,
      maxSources: options.maxSources,
      now: this.#now,
    });
    this.#cookies = new CookieJar({
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      now: this.#now,
    });
    this.#view = new PoolView(this.#registry, (err) =>
      this.#logger.error({ err }, 'assigner: registry snapshot failed'),
    );
  }

  /** Follows the registry and binds the UDP socket; resolves with the bound address. */
  async start(): Promise<BoundAddress> {
    if (this.#bound) return this.#bound;
    if (this.#socket || this.#closing)
      throw new InvalidArgumentError('assigner: start() called twice or after close()');
    await this.#view.start();
    const { host, port } = this.#config;
    const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', lookup: ipLookup });
    this.#socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port, address: host, exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.#socket = undefined;
      this.#view.close();
      try {
        socket.close();
      } catch {
        // never bound
      }
      throw error;
    }
    socket.on('error', (err) => this.#logger.warn({ err }, 'assigner socket error'));
    this.#replies = new Replies(socket, this.#stats, this.#cookies, this.#logger);
    socket.on('message', (bytes, rinfo) => this.#onDatagram(bytes, rinfo));
    const a = socket.address();
    this.#bound = { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    this.#logger.info(
      { address: a.address, port: a.port, mode: this.#config.mode, apps: Object.keys(this.#config.apps) },
      'assigner listening',
    );
    return this.#bound;
  }

  /** The bound address (after `start`). */
  get address(): BoundAddress | undefined {
    return this.#bound;
  }

  get config(): AssignerConfig {
    return this.#config;
  }

  /**
   * Applies a new section (mode, apps, rate limits) at once. Host and port cannot change
   * without a restart: that throws InvalidArgumentError and changes nothing.
   */
  reconfigure(next: AssignerConfig): void {
    if (next.host !== this.#config.host || next.port !== this.#config.port)
      throw new InvalidArgumentError(
        `assigner: host and port cannot change without a restart (running ${this.#config.host}:${this.#config.port}, got ${next.host}:${next.port})`,
      );
    this.#limiter.configure(next.rateLimit.perSecond, next.rateLimit.burst);
    this.#config = next;
    this.#catalog = undefined;
    this.#incarnationPolicies = new Map();
    this.#poolPolicies = new Map();
  }

  /** The role summary shown by the admin API and the dashboard. */
  summary(): AssignerSummary {
    const b = this.#bound;
    const address = b ? (b.family === 'IPv6' ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`) : '';
    const base = this.#stats.summary(
      { address, mode: this.#config.mode, sources: this.#limiter.sources },
      this.#config.apps,
      this.#now(),
    );
    return { ...base, sites: this.#sites.summary(this.#config.site) };
  }

  /** Stops listening and following the registry; safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#view.close();
      const socket = this.#socket;
      this.#socket = undefined;
      this.#replies?.flush(); // NOTIFYs and the answers held behind them go out before the socket closes
      this.#replies = undefined;
      if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
      this.#limiter.clear();
    })();
    return this.#closing;
  }

  // ---- one datagram ----------------------------------------------------------------------

  #onDatagram(bytes: Buffer, rinfo: dgram.RemoteInfo): void {
    try {
      this.#handle(bytes, rinfo);
    } catch (err) {
      this.#stats.drop('internal');
      this.#logger.error({ err }, 'assigner: failed to handle a datagram');
    }
  }

  #handle(bytes: Buffer, rinfo: dgram.RemoteInfo): void {
    const replies = this.#replies;
    if (!replies) return;
    const size = bytes.length;
    this.#stats.bytes('in', size);
    // The assigner carries no application data: anything not marked as a probe is dropped.
    if (!isProbeDatagram(bytes)) {
      this.#stats.drop('data');
      return;
    }
    const address = unmapIPv4(rinfo.address);
    // Never answered: an answer would let a spoofed source be flooded.
    if (!this.#limiter.take(address)) {
      this.#stats.drop('rate-limited');
      return;
    }
    const result = decode(bytes);
    if (!result.ok) {
      this.#stats.drop(result.error === 'not-probe' ? 'data' : result.error);
      return;
    }
    const message = result.message;
    const client: Endpoint = { address, port: rinfo.port };
    const request: Request = {
      message,
      client,
      replyAddress: rinfo.address,
      size,
      validated: message.cookie !== undefined && this.#cookies.check(client, message.cookie),
    };
    switch (message.kind) {
      case 'PROBE':
        this.#probe(request, replies);
        break;
      case 'CATALOG':
        this.#catalogRequest(request, replies);
        break;
      default:
        this.#stats.drop('unexpected-kind');
    }
  }

  #probe(req: Request, replies: Replies): void {
    const { message } = req;
    const config = this.#config;
    const appName = message.app;
    const app = appName !== undefined ? this.#appsOf(config).get(appName) : undefined;
    this.#stats.request(app ? appName! : '(unknown)', 'PROBE');
    if (!app || appName === undefined) {
      replies.error(req, ErrorCode.UNKNOWN_APP, 'unknown app');
      return;
    }
    const incarnation = message.incarnation;
    if (incarnation !== undefined && app.incarnations && !app.incarnations.includes(incarnation)) {
      replies.error(req, ErrorCode.UNKNOWN_APP, 'unknown incarnation');
      return;
    }

    const pool = this.#view.members(app.pool);
    const policy = this.#policy(appName, app.pool, app.incarnations, incarnation);
    // Own site first; another site's member when the app allows it (P0.9, sites.ts).
    const placed = place(
      pool,
      forIncarnation(pool, incarnation),
      config.site,
      app,
      this.#picker.for(policy, req.client),
    );
    const member = placed.member;
    const found = member && memberAddresses(member);
    const target = found?.target;
    if (!member || !target) {
      if (member) this.#logger.warn({ member: member.id }, 'assigner: chosen member has no address or port');
      replies.error(req, ErrorCode.NO_MEMBER, 'no member available');
      return;
    }
    // The messages come from templates (templates.ts): the same bytes as encoding
    // { kind, requestId, app, incarnation?, session, user?, endpoint, ... } field by field.
    const templates = this.#templates;
    const toMember: ToMember = {
      requestId: message.requestId,
      session: this.#tokens.next(),
      client: req.client,
      user: message.user,
    };

    if (config.mode === 'forward') {
      let forward: Uint8Array;
      try {
        forward = templates.forward(
          appName,
          incarnation,
          toMember,
          req.validated,
          Math.min(req.size, 0xffff),
        );
      } catch (err) {
        replies.encodeFailed(err, 'FORWARD');
        return;
      }
      replies.toMember(target, forward);
      this.#stats.assignment(appName, member.id, 'forward', this.#now());
      if (placed.overflow) this.#sites.overflow(placed.site, member.site, placed.overflow);
      return;
    }

    const own = found.own;
    if (!own) {
      this.#logger.warn({ member: member.id }, 'assigner: chosen member has no IP address to announce');
      replies.error(req, ErrorCode.NO_MEMBER, 'no member available');
      return;
    }
    // A probe that names no incarnation gets one here, so that the answer and the NOTIFY agree
    // (in forward mode the member picks, with the same rule: its first one).
    const chosen = incarnation ?? defaultIncarnation(member, app.incarnations);
    let response: Uint8Array;
    try {
      response = templates.probeResponse(member, own, appName, chosen, message.requestId, toMember.session);
    } catch (err) {
      replies.encodeFailed(err, 'PROBE_RESPONSE');
      return;
    }
    if (!replies.fits(req, response)) {
      replies.retry(req);
      return;
    }
    // NOTIFY first, so the session exists before the client's first datagram (NOTIFYs are
    // batched per member and the answer is held until its NOTIFY has gone: see Replies).
    try {
      replies.notify(target, templates.notify(appName, chosen, toMember));
    } catch (err) {
      replies.encodeFailed(err, 'NOTIFY');
    }
    if (!replies.toClient(req, response)) return;
    this.#stats.assignment(appName, member.id, 'answer', this.#now());
    if (placed.overflow) this.#sites.overflow(placed.site, member.site, placed.overflow);
  }

  /**
   * `config.apps` as a map, made once per config: a lookup by a string just decoded costs less in
   * a Map than as a property name (which V8 must first find in its string table).
   */
  #appsOf(config: AssignerConfig): Map<string, AssignerConfig['apps'][string]> {
    if (this.#apps.config !== config) this.#apps = { config, map: new Map(Object.entries(config.apps)) };
    return this.#apps.map;
  }

  /** The pool's policy, or for a declared incarnation one of its own (see `newPolicy`). */
  #policy(
    app: string,
    pool: string,
    declared: readonly string[] | undefined,
    incarnation: string | undefined,
  ): Policy {
    if (incarnation === undefined || !this.#newPolicy || !declared?.includes(incarnation))
      return this.#poolPolicy(pool);
    const key = `${app}\0${incarnation}`;
    let policy = this.#incarnationPolicies.get(key);
    if (!policy) {
      policy = this.#newPolicy(pool) ?? this.#poolPolicy(pool);
      this.#incarnationPolicies.set(key, policy);
    }
    return policy;
  }

  /** `policyFor(pool)`, asked once per pool (Usher's answer follows reloads by itself). */
  #poolPolicy(pool: string): Policy {
    let policy = this.#poolPolicies.get(pool);
    if (policy === undefined) {
      policy = this.#policyFor(pool);
      this.#poolPolicies.set(pool, policy);
    }
    return policy;
  }

  #catalogRequest(req: Request, replies: Replies): void {
    this.#stats.request('', 'CATALOG');
    const revision = this.#view.revision;
    let cached = this.#catalog;
    if (!cached || cached.revision !== revision || cached.config !== this.#config) {
      cached = {
        revision,
        config: this.#config,
        body: buildCatalog(this.#config.apps, (pool) => this.#view.members(pool)),
      };
      this.#catalog = cached;
    }
    replies.answerOrRetry(req, {
      kind: 'CATALOG_RESPONSE',
      requestId: req.message.requestId,
      body: cached.body,
    });
  }
}

/** Where FORWARD and NOTIFY go: the member's first address, its `probe` port, else `main`. */
/**
 * `memberEndpoint` and `ipEndpoint` of a member, worked out once per Member object (the pool
 * view replaces the object when the member changes).
 */
const addressesOf = new WeakMap<Member, { target: MemberTarget | undefined; own: Endpoint | undefined }>();

function memberAddresses(member: Member): { target: MemberTarget | undefined; own: Endpoint | undefined } {
  let found = addressesOf.get(member);
  if (found === undefined) {
    const target = memberEndpoint(member);
    found = { target, own: target && ipEndpoint(member, target.port) };
    addressesOf.set(member, found);
  }
  return found;
}

/**
 * The policy's `pick` for `place`, made once and pointed at each probe's policy and client (a
 * closure per probe showed in profiles). The client's hash key (for policies that are
 * deterministic per client: maglev, ranges) is computed only when the policy reads it.
 */
class Picker {
  #policy: Policy | undefined;
  #client: Endpoint = { address: '', port: 0 };

  for(policy: Policy, client: Endpoint): (members: readonly MemberView[]) => Member | undefined {
    this.#policy = policy;
    this.#client = client;
    return this.#pick;
  }

  readonly #pick = (members: readonly MemberView[]): Member | undefined =>
    this.#policy?.pick(new ClientPick(members, this.#client));
}

/** A PickRequest whose key, the hash of the client's observed endpoint, is computed on first read. */
class ClientPick implements PickRequest {
  readonly members: readonly MemberView[];
  readonly #client: Endpoint;
  #key: number | undefined;

  constructor(members: readonly MemberView[], client: Endpoint) {
    this.members = members;
    this.#client = client;
  }

  get key(): number {
    this.#key ??= hashKey(`${this.#client.address}|${this.#client.port}`);
    return this.#key;
  }
}

/**
 * The socket's name lookup. dgram resolves every destination of every send through it, and
 * dns.lookup answers even an IP address a tick later (a process.nextTick per datagram); here
 * an IP address (the observed client, a member's address) is its own answer at once, and only a
 * host name goes to dns.lookup.
 */
function ipLookup(
  address: string,
  options: dns.LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = net.isIP(address);
  if (family !== 0) callback(null, address, family);
  else dns.lookup(address, options as dns.LookupOneOptions, callback);
}

function memberEndpoint(member: Member): MemberTarget | undefined {
  const address = member.addresses[0];
  const port = member.ports.probe ?? member.ports.main;
  if (address === undefined || port === undefined) return undefined;
  return { address, port, id: member.id };
}

/** The member's own endpoint as a PROBE_RESPONSE carries it: its first IP address (not a host name). */
function ipEndpoint(member: Member, port: number): Endpoint | undefined {
  const address = member.addresses.find((a) => net.isIP(a) !== 0);
  return address === undefined ? undefined : { address: unmapIPv4(address), port };
}

/** The member's first incarnation that the app declares (or its first, or the app's first). */
function defaultIncarnation(member: Member, declared: readonly string[] | undefined): string | undefined {
  const hosted = member.labels.incarnations?.split(',').filter(Boolean) ?? [];
  if (declared && declared.length > 0) return hosted.find((i) => declared.includes(i)) ?? declared[0];
  return hosted[0];
}
