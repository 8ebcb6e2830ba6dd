/**
 * One running Usher process: the registry, health checking, the admin API and dashboard,
 * and every role its configuration switches on. `usher run` is a thin shell around this.
 */

import { isDeepStrictEqual } from 'node:util';
import { Metrics } from './admin/metrics.js';
import { type AdminServer, createAdminServer, type ReloadResult } from './admin/server.js';
import type { ClusterRole } from './cluster/cluster-role.js';
import { diffConfig, reloadIssues, staticMembers } from './config/diff.js';
import { loadConfigFile, validateConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createPolicy } from './core/policy/index.js';
import type { Policy } from './core/policy/policy.js';
import { DemoPlayers, DemoWorld } from './demo/game-world.js';
import { DemoMemberServer } from './demo/member-server.js';
import type { DemoStreamMember } from './demo/stream-member.js';
import { DemoViewers } from './demo/stream-viewers.js';
import { DemoTraffic } from './demo/traffic.js';
import { ConfigInvalidError, ConfigUnreadableError } from './errors.js';
import { HealthMonitor } from './health/monitor.js';
import type { ListHttpServer } from './list/list-http.js';
import type { ListService } from './list/list-service.js';
import type { ProbeAgent } from './probe/agent.js';
import { Assigner } from './probe/assigner.js';
import { createRegistry } from './registry/create.js';
import type { CoordinatorElection } from './registry/etcd/election.js';
import { MeshRegistry } from './registry/mesh/index.js';
import type { Registry } from './registry/registry.js';
import { sampleRegistryMetrics } from './registry/registry-metrics.js';
import { clusterRole, demoStreamMember, startAgent, startList } from './runtime-roles.js';
import type { Logger } from './util/logger.js';
import { VERSION } from './version.js';

export interface UsherOptions {
  logger: Logger;
  /** Token for admin mutations (the CLI passes USHER_ADMIN_TOKEN). */
  adminToken?: string | undefined;
  /** The file a reload re-reads; without it, reload needs a config body. */
  configPath?: string;
  /** Reads and validates the config file (injectable for tests). */
  loadFile?: (path: string) => Promise<Config>;
}

export interface UsherUrls {
  dashboard?: string;
  /** The list service (L3.3). */
  list?: string;
  /** The live-data demo page. */
  liveDemo?: string;
  metrics?: string;
  api?: string;
}

export class Usher {
  readonly registry: Registry;
  readonly metrics: Metrics;
  readonly logger: Logger;
  #config: Config;
  #options: UsherOptions;
  #admin: AdminServer | undefined;
  readonly health: HealthMonitor;
  #demo: DemoMemberServer[] = [];
  #traffic: DemoTraffic[] = [];
  #worlds: DemoWorld[] = [];
  #players: DemoPlayers[] = [];
  #assigner: Assigner | undefined;
  #agents: ProbeAgent[] = [];
  #streams: DemoStreamMember[] = [];
  #viewers: DemoViewers[] = [];
  #cluster: ClusterRole | undefined;
  #election: CoordinatorElection | undefined;
  #stopRegistryMetrics: () => void = () => {};
  #list: { service: ListService; http: ListHttpServer } | undefined;
  #policies = new Map<string, Policy>();
  /** One delegating wrapper per pool (see `policyFor`). */
  #policyWrappers = new Map<string, Policy>();
  #closing: Promise<void> | undefined;
  #reloading: Promise<unknown> = Promise.resolve();
  #reloads;

  private constructor(config: Config, options: UsherOptions, registry: Registry, metrics: Metrics) {
    this.#config = config;
    this.#options = options;
    this.registry = registry;
    this.metrics = metrics;
    this.logger = options.logger;
    this.#reloads = metrics.counter('config_reloads_total', 'Configuration reloads by outcome.', ['outcome']);
    this.health = new HealthMonitor({
      registry,
      pools: healthPools(config),
      onError: (err) => this.logger.error({ err }, 'health monitor error'),
    });
    const transitions = metrics.counter('health_transitions_total', 'Member health transitions.', [
      'pool',
      'from',
      'to',
    ]);
    this.health.on('transition', (t) => {
      transitions.inc({ pool: t.pool, from: t.from, to: t.to });
      const level = t.to === 'down' || t.to === 'suspect' ? 'warn' : 'info';
      this.logger[level](
        { member: t.id, pool: t.pool, from: t.from, to: t.to, reason: t.reason },
        'member health changed',
      );
    });
  }

  /** Starts every role of `config`. On failure, whatever was started is stopped again. */
  static async start(config: Config, options: UsherOptions): Promise<Usher> {
    const metrics = new Metrics();
    const registry = await createRegistry(config.registry, { logger: options.logger });
    const usher = new Usher(config, options, registry, metrics);
    try {
      await usher.#start();
    } catch (error) {
      await usher.close().catch(() => {});
      throw error;
    }
    return usher;
  }

  get config(): Config {
    return this.#config;
  }

  /** The probe assigner, when the config has an `assigner` section. */
  get assigner(): Assigner | undefined {
    return this.#assigner;
  }

  urls(): UsherUrls {
    const list = this.#list?.http.url;
    const lists = list
      ? {
          list: `${list}/usher/list`,
          ...(this.#streams.length > 0 ? { liveDemo: `${list}/demo/live` } : {}),
        }
      : {};
    if (!this.#admin) return lists;
    const u = this.#admin.url;
    return { dashboard: `${u}/`, metrics: `${u}/metrics`, api: `${u}/api/v1/state`, ...lists };
  }

  async #start(): Promise<void> {
    const config = this.#config;
    this.#policies = buildPolicies(config);
    this.#stopRegistryMetrics = sampleRegistryMetrics(this.metrics, this.registry);
    for (const m of staticMembers(config)) await this.registry.register(m);
    await this.health.start();
    if (config.assigner) {
      // The cookie secret: USHER_PROBE_SECRET (read by the CookieJar), else random per process.
      this.#assigner = new Assigner({
        config: config.assigner,
        registry: this.registry,
        policyFor: (pool) => this.policyFor(pool),
        newPolicy: (pool) => {
          const cfg = this.#config.pools[pool];
          return cfg ? buildPolicy(cfg.policy) : undefined;
        },
        metrics: this.metrics,
        logger: this.logger,
      });
      await this.#assigner.start();
    }
    for (const a of config.agents)
      await startAgent(a, this.registry, this.logger, (agent) => this.#agents.push(agent));
    if (config.cluster) {
      const { role, election } = await clusterRole(config, this.registry, this.logger);
      this.#cluster = role;
      this.#election = election;
      await role.start();
    }
    for (const s of config.demo?.servers ?? []) {
      for (let i = 0; i < s.count; i++) {
        const demo = new DemoMemberServer({
          id: `${s.pool}-${i + 1}`,
          pool: s.pool,
          port: s.basePort === 0 ? 0 : s.basePort + i,
          site: s.site,
          reportIntervalMs: s.reportIntervalMs,
          registry: this.registry,
        });
        this.#demo.push(demo);
        await demo.start();
      }
    }
    for (const t of config.demo?.traffic ?? []) {
      const traffic = new DemoTraffic({
        pool: t.pool,
        policy: this.policyFor(t.pool),
        registry: this.registry,
        ratePerSec: t.ratePerSec,
        holdMs: t.holdMs,
      });
      this.#traffic.push(traffic);
      traffic.start();
    }
    for (const w of config.demo?.worlds ?? []) {
      for (let i = 0; i < w.count; i++) {
        const world = new DemoWorld({
          id: `${w.pool}-${i + 1}`,
          pool: w.pool,
          app: w.app,
          port: w.basePort === 0 ? 0 : w.basePort + i,
          site: w.site,
          incarnations: w.incarnations,
          registry: this.registry,
        });
        this.#worlds.push(world);
        await world.start();
      }
    }
    for (const st of config.demo?.streams ?? []) {
      for (let i = 0; i < st.count; i++) {
        const stream = demoStreamMember(st, i, this.registry);
        this.#streams.push(stream);
        await stream.start();
      }
    }
    if (config.list) {
      const { service, http } = await startList(
        config,
        this.registry,
        this.metrics,
        this.logger,
        this.#streams.length > 0,
      );
      this.#list = { service, http };
      const listHost = http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host;
      for (const v of config.demo?.viewers ?? []) {
        const viewers = new DemoViewers({
          listUrls: [
            `http://${listHost.includes(':') ? `[${listHost}]` : listHost}:${http.port}/usher/list/${v.pool}`,
          ],
          count: v.count,
          stayMs: v.stayMs,
        });
        this.#viewers.push(viewers);
        viewers.start();
      }
      this.logger.info({ url: `${http.url}/usher/list` }, 'list service listening');
    }
    const bound = this.#assigner?.address;
    for (const p of config.demo?.players ?? []) {
      if (!bound) break;
      const host = bound.address === '0.0.0.0' || bound.address === '::' ? '127.0.0.1' : bound.address;
      const players = new DemoPlayers({
        balancer:
          bound.family === 'IPv6' && host.includes(':') ? `[${host}]:${bound.port}` : `${host}:${bound.port}`,
        app: p.app,
        count: p.count,
        movesPerSec: p.movesPerSec,
        stayMs: p.stayMs,
      });
      this.#players.push(players);
      players.start();
    }
    if (config.demo)
      this.logger.info(
        {
          members: this.#demo.length,
          traffic: this.#traffic.length,
          worlds: this.#worlds.length,
          players: this.#players.length,
          streams: this.#streams.length,
        },
        'demo started',
      );
    if (config.admin) {
      this.#admin = await createAdminServer({
        host: config.admin.host,
        port: config.admin.port,
        token: this.#options.adminToken,
        registry: this.registry,
        metrics: this.metrics,
        version: VERSION,
        pools: () => Object.keys(this.#config.pools),
        roles: () => this.roles(),
        actions: {
          drain: (id) => this.drain(id),
          undrain: (id) => this.undrain(id),
          reload: (body) => this.#reloadFromAdmin(body),
        },
        logger: this.logger,
      });
    }
  }

  /** Per-role summaries shown by the admin API and dashboard. */
  roles(): Record<string, unknown> {
    const roles: Record<string, unknown> = {};
    if (this.#traffic.length + this.#worlds.length + this.#players.length + this.#streams.length > 0) {
      roles.demo = {
        ...(this.#traffic.length > 0 ? { traffic: this.#traffic.map((t) => t.summary()) } : {}),
        ...(this.#worlds.length > 0
          ? { worlds: Object.fromEntries(this.#worlds.map((w) => [w.id, w.stats()])) }
          : {}),
        ...(this.#players.length > 0 ? { players: this.#players.map((p) => p.summary()) } : {}),
        ...(this.#streams.length > 0
          ? { streams: Object.fromEntries(this.#streams.map((st) => [st.id, st.stats()])) }
          : {}),
        ...(this.#viewers.length > 0 ? { viewers: this.#viewers.map((v) => v.summary()) } : {}),
      };
    }
    if (this.#assigner) roles.assigner = this.#assigner.summary();
    const cluster = this.#cluster?.summary();
    if (cluster) roles.cluster = cluster;
    if (this.registry instanceof MeshRegistry)
      roles.mesh = {
        node: this.registry.nodeId,
        nodes: Object.fromEntries(this.registry.nodes().map((n) => [n.id, n.state])),
      };
    if (this.#list)
      roles.list = { url: `${this.#list.http.url}/usher/list`, requests: this.#list.service.requestCounts() };
    if (this.#agents.length > 0)
      roles.agents = Object.fromEntries(
        this.#agents.map((a) => [a.member.id, { sessions: a.member.sessions().length, ...a.stats() }]),
      );
    return roles;
  }

  /**
   * The selection policy of a pool, as configured now. The returned object always delegates
   * to the current policy, so a reload that changes it takes effect at once.
   */
  policyFor(pool: string): Policy {
    let wrapper = this.#policyWrappers.get(pool);
    if (!wrapper) {
      const policies = () => this.#policies;
      wrapper = {
        get name() {
          return policies().get(pool)?.name ?? 'none';
        },
        pick: (request) => policies().get(pool)?.pick(request),
      };
      this.#policyWrappers.set(pool, wrapper);
    }
    return wrapper;
  }

  /** Drains a member: it stays `draining` whatever its checks say, until `undrain`. */
  async drain(id: string): Promise<void> {
    await this.health.drain(id, 'operator drain');
    this.logger.info({ member: id }, 'member draining');
  }

  /** Ends a drain: the member takes the state its checks imply. */
  async undrain(id: string): Promise<void> {
    await this.health.undrain(id, 'operator undrain');
    this.logger.info({ member: id }, 'member undrained');
  }

  /**
   * Applies a new, already validated config atomically: either every change is applied or
   * (when a restart-only section changed) none is and the issues are returned.
   * Reloads are serialised.
   */
  reload(next: Config): Promise<ReloadResult> {
    const run = this.#reloading.then(() => this.#apply(next));
    this.#reloading = run.catch(() => {});
    return run;
  }

  async #apply(next: Config): Promise<ReloadResult> {
    const issues = reloadIssues(this.#config, next);
    if (issues.length > 0) {
      this.#reloads.inc({ outcome: 'refused' });
      return { ok: false, issues };
    }
    try {
      this.health.setPools(healthPools(next)); // validates first; changes nothing on error
    } catch (error) {
      this.#reloads.inc({ outcome: 'refused' });
      return { ok: false, issues: [{ path: 'pools', message: (error as Error).message }] };
    }
    const change = diffConfig(this.#config, next);
    // Pools whose policy settings did not change keep their policy object (and its state:
    // round-robin position, Maglev table); the others get a new one.
    const policies = new Map<string, Policy>();
    for (const [name, cfg] of Object.entries(next.pools)) {
      const same = isDeepStrictEqual(this.#config.pools[name]?.policy, cfg.policy);
      policies.set(name, (same && this.#policies.get(name)) || buildPolicy(cfg.policy));
    }
    this.#policies = policies;
    this.#config = next;
    // reloadIssues refused a change of host or port, and adding or removing the section.
    if (this.#assigner && next.assigner) this.#assigner.reconfigure(next.assigner);
    for (const m of [...change.added, ...change.updated]) await this.registry.register(m);
    for (const id of change.removed) await this.registry.deregister(id, 'removed from config');
    this.#reloads.inc({ outcome: 'applied' });
    const revision = (await this.registry.snapshot()).revision;
    this.logger.info(
      {
        added: change.added.map((m) => m.id),
        updated: change.updated.map((m) => m.id),
        removed: change.removed,
        poolsChanged: change.poolsChanged,
      },
      'config reloaded',
    );
    return { ok: true, revision };
  }

  async #reloadFromAdmin(body: unknown): Promise<ReloadResult> {
    let next: Config;
    try {
      if (
        body !== undefined &&
        body !== null &&
        !(typeof body === 'object' && Object.keys(body).length === 0)
      ) {
        next = validateConfig(body, 'reload body');
      } else if (this.#options.configPath) {
        const load = this.#options.loadFile ?? loadConfigFile;
        next = await load(this.#options.configPath);
      } else {
        return {
          ok: false,
          issues: [{ path: '', message: 'no config file to re-read; send the config as the body' }],
        };
      }
    } catch (error) {
      if (error instanceof ConfigInvalidError) {
        this.#reloads.inc({ outcome: 'invalid' });
        return { ok: false, issues: [...error.issues] };
      }
      if (error instanceof ConfigUnreadableError) {
        this.#reloads.inc({ outcome: 'invalid' });
        return { ok: false, issues: [{ path: '', message: error.message }] };
      }
      throw error;
    }
    return this.reload(next);
  }

  /** Drains and stops everything; safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#reloading;
    // The assigner first: no new client is placed on a member that is about to stop.
    await this.#assigner?.close();
    // Then admin requests (ends SSE streams), then members, then the registry.
    await this.#admin?.close();
    if (this.#list) {
      await this.#list.http.close();
      await this.#list.service.close();
    }
    for (const t of this.#traffic) t.close();
    for (const v of this.#viewers) v.close();
    await Promise.all(this.#players.map((p) => p.close()));
    await this.health.close();
    await this.#cluster?.close();
    await this.#election?.close();
    // Members this process runs are marked draining before they stop, so that watchers stop
    // sending them work; their requests in flight are allowed to finish.
    for (const d of this.#demo)
      await this.registry.setHealth(d.id, 'draining', 'shutting down').catch(() => {});
    for (const w of [...this.#worlds, ...this.#agents.map((a) => a.member), ...this.#streams])
      await this.registry.setHealth(w.id, 'draining', 'shutting down').catch(() => {});
    await Promise.all([
      ...this.#demo.map((d) => d.close()),
      ...this.#worlds.map((w) => w.close()),
      ...this.#agents.map((a) => a.close()),
      ...this.#streams.map((st) => st.close()),
    ]);
    this.#stopRegistryMetrics();
    await this.registry.close();
  }
}

function healthPools(config: Config): Record<string, Config['pools'][string]['health']> {
  return Object.fromEntries(Object.entries(config.pools).map(([name, p]) => [name, p.health]));
}

function buildPolicy(cfg: Config['pools'][string]['policy']): Policy {
  const { name, ...options } = cfg;
  return createPolicy(name, options);
}

function buildPolicies(config: Config): Map<string, Policy> {
  return new Map(Object.entries(config.pools).map(([name, p]) => [name, buildPolicy(p.policy)]));
}
