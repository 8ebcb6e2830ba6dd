/**
 * The one schema of `usher.yaml`: it validates, supplies defaults, documents (the README's
 * configuration reference is generated from it by `npm run docs:config`) and gives the
 * TypeScript type (`Config`). Sections switch roles on; a missing section means the role is off.
 */
import { z } from 'zod';
import { createPolicy, POLICY_NAMES } from '../core/policy/index.js';
import { InvalidArgumentError } from '../errors.js';
import { POOL_HEALTH_DEFAULTS, resolvePoolHealth } from '../health/pool-config.js';
import { parseAddress } from '../probe/address.js';
import { parseEndpoint } from '../probe/host-port.js';

const range = (lo: number, hi: number) =>
  z
    .number()
    .int({ error: (i) => `expected an integer ${lo}..${hi}, got ${String(i.input)}` })
    .min(lo, { error: (i) => `expected ${lo}..${hi}, got ${String(i.input)}` })
    .max(hi, { error: (i) => `expected ${lo}..${hi}, got ${String(i.input)}` });

export const port = range(1, 65535);
/** 0 asks the OS for an ephemeral port. */
export const listenPort = range(0, 65535);
const millis = (lo: number, hi: number) => range(lo, hi);

const name = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, {
  error: (i) =>
    `expected a name of letters, digits, '.', '_' or '-' (1..63 chars), got ${JSON.stringify(i.input)}`,
});

const host = z
  .string()
  .min(1, { error: 'expected a host name or IP address, got an empty string' })
  .max(253, { error: 'expected a host name or IP address of at most 253 characters' });

const policy = z
  .strictObject({
    name: z.enum(POLICY_NAMES).default('round-robin').describe('Selection policy.'),
    metric: z
      .string()
      .optional()
      .describe(
        'Load metric (`users`, `connections`, `inFlight`, `cpu`, `custom.<name>`) for least-loaded, p2c, priority-load.',
      ),
    normalizeByWeight: z
      .boolean()
      .optional()
      .describe(
        'least-loaded: compare load per unit of weight; priority-load: users per unit of weight, shares scaled by weight.',
      ),
    sharpen: z
      .boolean()
      .optional()
      .describe(
        'priority-load: raise each factor of the formula to the power live − 1 (evens out utilisation; see bench/list.ts).',
      ),
    tableSize: range(7, 1_000_003).optional().describe('maglev: lookup table size, a prime (default 65537).'),
    space: z
      .strictObject({ lo: range(0, 0x7fffffff), hi: range(0, 0x7fffffff) })
      .optional()
      .describe('ranges: the value space, inclusive (default 0..32000, C2.2).'),
    buckets: range(1, 1 << 22)
      .optional()
      .describe('ranges: buckets the space is split into (default 16384).'),
  })
  .describe('Which member a front door chooses; options a policy does not take are refused.');

const H = POOL_HEALTH_DEFAULTS;
const healthCheck = z
  .strictObject({
    kind: z
      .enum(['tcp', 'http', 'udp', 'none'])
      .default(H.kind)
      .describe(
        'Active check: TCP connect, HTTP GET, UDP probe (a PROBE answered by PROBE_RESPONSE or ERROR), or none.',
      ),
    port: z
      .union([port, name])
      .optional()
      .describe(
        'Port number, or the name of one of the member `ports` (default: `health`, else `main`; for udp: `probe`, else `health`, else `main`).',
      ),
    app: z
      .string()
      .min(1, { error: 'expected an app name of 1..64 bytes, got an empty string' })
      .refine((s) => new TextEncoder().encode(s).length <= 64, {
        error: (i) =>
          `expected an app name of at most 64 bytes of UTF-8, got ${new TextEncoder().encode(String(i.input)).length}`,
      })
      .optional()
      .describe('UDP check: the app named in the probe (default: the pool name).'),
    path: z.string().startsWith('/').default(H.path).describe('HTTP check path.'),
    expectStatus: z
      .tuple([range(100, 599), range(100, 599)])
      .default([...H.expectStatus])
      .describe('Inclusive HTTP status range that passes.'),
    bodyContains: z.string().optional().describe('HTTP: the body must contain this text.'),
    intervalMs: millis(50, 3_600_000).default(H.intervalMs).describe('Time between checks.'),
    timeoutMs: millis(10, 600_000).default(H.timeoutMs).describe('Check timeout.'),
    fall: range(1, 100).default(H.fall).describe('Consecutive failures: up → suspect.'),
    downAfter: range(1, 100).default(H.downAfter).describe('Further failures: suspect → down.'),
    rise: range(1, 100).default(H.rise).describe('Consecutive successes: down → up.'),
    suspectTimeoutMs: millis(0, 86_400_000)
      .default(H.suspectTimeoutMs)
      .describe('Time suspect without a success before down.'),
    reportIntervalMs: millis(100, 3_600_000)
      .optional()
      .describe(
        'Expected load-report interval; when set, a member silent for `missedReports` intervals is suspect.',
      ),
    missedReports: range(1, 100)
      .default(H.missedReports)
      .describe('Intervals without a report that count as missed.'),
    flapPenalty: range(0, 1_000_000)
      .default(H.flapPenalty)
      .describe('Flap damping: penalty per fall to down (0 = no damping).'),
    halfLifeMs: millis(1, 86_400_000)
      .default(H.halfLifeMs)
      .describe('Flap damping: half-life of the penalty.'),
    suppressThreshold: range(1, 1_000_000)
      .default(H.suppressThreshold)
      .describe('Flap damping: penalty at which a member is held down.'),
    reuseThreshold: range(0, 1_000_000)
      .default(H.reuseThreshold)
      .describe('Flap damping: penalty below which it is released.'),
  })
  .describe('Health checking for the members of a pool (member labels `health.kind|port|path` override).');

const member = z
  .strictObject({
    id: name.describe('Unique member id.'),
    address: host.default('127.0.0.1').describe('Primary address.'),
    addresses: z.array(host).optional().describe('Extra addresses (the primary one comes first).'),
    port: port.describe('Main service port.'),
    ports: z.record(name, port).default({}).describe('Named extra ports (`probe`, `admin`, ...).'),
    site: name.default('local').describe('Site (region, data centre).'),
    group: range(0, 1000).default(0).describe('Priority group: 0 is primary, higher numbers are fallbacks.'),
    weight: z
      .number()
      .positive({ error: (i) => `expected a weight > 0, got ${String(i.input)}` })
      .max(1e6)
      .default(1)
      .describe('Relative weight / capacity.'),
    labels: z.record(z.string(), z.string()).default({}).describe('Free-form labels.'),
  })
  .describe('A member of a pool.');

const pool = z
  .strictObject({
    policy: policy.default({ name: 'round-robin' }),
    health: healthCheck.default(() => healthCheck.parse({})),
    members: z.array(member).default([]).describe('Static members (more can join at run time).'),
  })
  .describe('A named set of members offering one service.');

export const meshSchema = z
  .strictObject({
    node: name
      .optional()
      .describe('This node’s id in the mesh, unique among peers (default: the host name).'),
    host: host.default('127.0.0.1').describe('TCP listen address for peers.'),
    port: listenPort.default(9400).describe('TCP listen port for peers (0 = ephemeral).'),
    advertise: z
      .string()
      .optional()
      .describe('host:port peers dial to reach this node (default: the listen address and port).'),
    seeds: z
      .array(z.string())
      .default([])
      .describe('host:port of some peers; the node learns the others from them (full mesh).'),
    intervalMs: millis(20, 60_000).default(500).describe('Status heartbeat to every peer (L3.1).'),
    missedReports: range(1, 100)
      .default(3)
      .describe('Heartbeats missed before a peer is checked directly and through others (L3.2).'),
    pingTimeoutMs: millis(10, 60_000).default(400).describe('Timeout of a direct or indirect check.'),
    indirectChecks: range(0, 16).default(3).describe('Peers asked to check a silent peer (SWIM ping-req).'),
    suspicionMinMs: millis(10, 600_000)
      .default(2000)
      .describe('Shortest time a peer stays suspect before down (with many confirmations).'),
    suspicionMaxMs: millis(10, 600_000)
      .default(8000)
      .describe('Longest time suspect before down (Lifeguard: shortened by confirmations).'),
    reapAfterMs: millis(0, 86_400_000)
      .default(60_000)
      .describe('Members of a dead node are removed after this long.'),
  })
  .describe(
    'Status mesh (L3.1, L3.2): peers connected point to point share the registry. The shared secret that authenticates peers comes from USHER_MESH_SECRET.',
  );

export const etcdSchema = z
  .strictObject({
    endpoints: z
      .array(
        z.string().regex(/^https?:\/\/[^\s/]+$/, {
          error: (i) => `expected http://host:port, got ${JSON.stringify(i.input)}`,
        }),
      )
      .min(1, { error: 'expected at least one etcd endpoint (http://host:port)' })
      .default(['http://127.0.0.1:2379'])
      .describe('etcd client URLs (every member of the etcd cluster, or some of them).'),
    prefix: z
      .string()
      .regex(/^\/[^\s]*\/$/, {
        error: (i) => `expected a key prefix that starts and ends with /, got ${JSON.stringify(i.input)}`,
      })
      .default('/usher/')
      .describe('Key prefix of this Usher installation in etcd (docs/protocols/etcd.md).'),
    dialTimeoutMs: millis(100, 600_000).default(5000).describe('Timeout of a call to etcd.'),
    leaseTtlMs: millis(1000, 600_000)
      .default(10_000)
      .describe(
        'Lease of the members this process registers (renewed every third of it): they vanish this long after the process dies. etcd counts whole seconds, at least its minimum TTL.',
      ),
  })
  .describe('etcd registry (scale-out): several balancers and members share one view through etcd.');

const registry = z
  .strictObject({
    kind: z
      .enum(['memory', 'mesh', 'etcd'])
      .default('memory')
      .describe('Registry implementation: `memory` (one process), `mesh` (peers) or `etcd` (scale-out).'),
    mesh: meshSchema.optional(),
    etcd: etcdSchema.optional(),
  })
  .describe('Where the control-plane state lives.');

const list = z
  .strictObject({
    host: host.default('127.0.0.1').describe('HTTP listen address.'),
    port: listenPort.default(9300).describe('HTTP listen port (0 = ephemeral).'),
    pools: z
      .array(name)
      .optional()
      .describe('Pools that may be listed; the first is served at /usher/list (default: every pool).'),
    maxAgeSec: range(0, 3600).default(1).describe('Cache-Control max-age of the list.'),
  })
  .describe(
    'List service (L3.3): GET /usher/list[/<pool>] as JSON, text, XML or JavaScript; also serves the browser SDK at /usher/client.js.',
  );

const admin = z
  .strictObject({
    host: host.default('127.0.0.1').describe('Listen address (loopback by default).'),
    port: listenPort.default(9180).describe('Listen port (0 = ephemeral).'),
    dashboard: z.boolean().default(true).describe('Serve the live dashboard at /.'),
  })
  .describe('Admin API, metrics and dashboard. The mutation token comes from USHER_ADMIN_TOKEN.');

const log = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    format: z
      .enum(['auto', 'json', 'pretty'])
      .default('auto')
      .describe('auto: pretty on a terminal, JSON otherwise.'),
  })
  .describe('Logging.');

const demo = z
  .strictObject({
    servers: z
      .array(
        z.strictObject({
          pool: name.describe('Pool the demo servers join.'),
          count: range(1, 64).default(3),
          basePort: listenPort.describe('Port of the first server; the others follow (0: ephemeral ports).'),
          site: name.default('local'),
          reportIntervalMs: millis(100, 60_000).default(1000).describe('How often each reports its load.'),
        }),
      )
      .default([]),
    traffic: z
      .array(
        z.strictObject({
          pool: name.describe('Pool whose policy places each demo request.'),
          ratePerSec: z.number().positive().max(1000).default(5).describe('Requests started per second.'),
          holdMs: millis(0, 60_000).default(1500).describe('How long each request stays open.'),
        }),
      )
      .default([])
      .describe('A demo client: asks the pool policy where each request goes, then sends it straight there.'),
    worlds: z
      .array(
        z.strictObject({
          pool: name.describe('Pool the worlds join (as UDP members).'),
          app: name.default('game').describe('App the worlds serve (the assigner maps it to the pool).'),
          count: range(1, 64).default(2),
          basePort: listenPort.describe('UDP port of the first world; the others follow (0: ephemeral).'),
          site: name.default('local'),
          incarnations: z
            .array(name)
            .min(1)
            .default(['world-1', 'world-2'])
            .describe('Worlds each server runs.'),
        }),
      )
      .default([])
      .describe('Demo UDP game worlds on the probe member library (seed 000).'),
    players: z
      .array(
        z.strictObject({
          app: name.default('game').describe('App the players probe the assigner for.'),
          count: range(1, 1000).default(6),
          movesPerSec: z.number().positive().max(100).default(2),
          stayMs: millis(0, 3_600_000)
            .default(20_000)
            .describe('Players leave after about this long and others join (0: stay).'),
        }),
      )
      .default([])
      .describe('Demo players: SDK clients placed by the assigner, then talking to their world directly.'),
    streams: z
      .array(
        z.strictObject({
          pool: name.describe('Pool the stream servers join.'),
          name: name
            .optional()
            .describe(
              'Member ids are `<name>-1`, `<name>-2`, ... (default: the pool name); unique per process in a mesh.',
            ),
          count: range(1, 64).default(3),
          basePort: listenPort.describe(
            'HTTP/WebSocket port of the first server; the others follow (0: ephemeral).',
          ),
          host: host.default('127.0.0.1'),
          site: name.default('local'),
          group: range(0, 1000).default(0).describe('Priority group of the servers.'),
          capacities: z
            .array(z.number().int().positive())
            .optional()
            .describe('Capacity (users) of each server in turn (default 100 each).'),
          tickMs: millis(10, 60_000).default(250).describe('Price tick interval.'),
        }),
      )
      .default([])
      .describe(
        'Demo live-data servers (seed 003): price ticks over WebSocket, users reported to the registry.',
      ),
    viewers: z
      .array(
        z.strictObject({
          pool: name.describe('Pool whose list the viewers fetch (served by this process’s `list` section).'),
          count: range(1, 1000).default(12),
          stayMs: millis(0, 3_600_000)
            .default(20_000)
            .describe('Viewers leave after about this long and others arrive (0: stay).'),
        }),
      )
      .default([])
      .describe('Demo viewers: Node SDK clients that choose a live-data server from the list and subscribe.'),
  })
  .describe('Demo member servers and traffic started inside `usher run` (for `npm start`).');

const probeApp = z
  .strictObject({
    pool: name.describe('Pool whose members serve the app (must be declared under `pools`).'),
    incarnations: z
      .array(name)
      .min(1, { error: 'expected at least one incarnation id (leave the key out for none)' })
      .optional()
      .describe(
        'Incarnations (worlds, rooms) clients may ask for (P0.6). A member hosts those listed in its label `incarnations` (comma-separated), or all when it has none; a probe for another id is answered UNKNOWN_APP.',
      ),
    overflow: z
      .enum(['overflow', 'local-only'])
      .default('overflow')
      .describe(
        "Several sites (P0.9): clients go to members of the assigner's `site` first; when none of those is up (or suspect) and below `overflowAt`, `overflow` places them on the least loaded other site, `local-only` answers NO_MEMBER.",
      ),
    overflowAt: z
      .number()
      .gt(0, { error: (i) => `expected a load fraction > 0 and ≤ 1, got ${String(i.input)}` })
      .max(1, { error: (i) => `expected a load fraction > 0 and ≤ 1, got ${String(i.input)}` })
      .optional()
      .describe(
        'Load fraction at which a member is full and takes no new client: users / capacity, capacity being the member label `capacity` or else weight × 100. Unset: members are never full by load.',
      ),
  })
  .describe('An application clients probe for.');

export const assignerSchema = z
  .strictObject({
    host: host
      .default('127.0.0.1')
      .describe('UDP listen address, IPv4 or IPv6 (`0.0.0.0`, `::`); changing it needs a restart.'),
    port: listenPort.default(9190).describe('UDP listen port (0 = ephemeral); changing it needs a restart.'),
    site: name
      .optional()
      .describe(
        "The assigner's own site (P0.9): members whose `site` is this one are preferred. Default: per app, the site most of its pool's members have (`local` for an empty pool).",
      ),
    mode: z
      .enum(['forward', 'answer'])
      .default('forward')
      .describe(
        'forward: the probe goes on to the chosen member, which answers the client (P0.2); answer: the assigner answers and notifies the member (P0.3).',
      ),
    apps: z
      .record(name, probeApp)
      .default({})
      .describe('Applications by the name clients put in their probes.'),
    rateLimit: z
      .strictObject({
        perSecond: z
          .number()
          .positive({ error: (i) => `expected a rate > 0, got ${String(i.input)}` })
          .max(1_000_000)
          .default(50)
          .describe('Datagrams per second each source address may send (token bucket refill).'),
        burst: range(1, 1_000_000).default(100).describe('Datagrams a quiet source may send at once.'),
      })
      .default({ perSecond: 50, burst: 100 })
      .describe('Per source address; datagrams beyond it are dropped unanswered.'),
  })
  .describe(
    'Probe assigner (P, seed 000): UDP probes in, a member chosen by the pool policy. Answers are never larger than the request unless the client returns a cookie; the cookie secret comes from USHER_PROBE_SECRET (random per process when unset; several assigners behind one address need the same). mode, site, apps and rateLimit apply on reload; adding or removing the section, or changing host or port, needs a restart.',
  );

export type AssignerConfig = z.output<typeof assignerSchema>;

const cluster = z
  .strictObject({
    pool: name.describe('Pool whose members share the value space (this member joins it).'),
    member: z
      .strictObject({
        id: name.describe('This member’s id (registered by this process, down when it dies).'),
        address: host.describe('Its own (management) address.'),
        port: port.default(80).describe('Its service port.'),
        site: name.default('local'),
      })
      .describe('The member this process speaks for.'),
    vip: host.describe('The virtual IP every member shares (C2.1).'),
    ports: z.array(port).default([80]).describe('TCP ports of the virtual IP that are filtered.'),
    udpPorts: z.array(port).default([]).describe('UDP ports of the virtual IP that are filtered.'),
    exchange: z
      .enum(['peer', 'coordinator'])
      .default('peer')
      .describe(
        'peer: every member computes every range from the shared view (C2.5a); coordinator: one member, elected through etcd, computes the plan and hands it out (C2.5b; needs registry kind etcd).',
      ),
    filter: z
      .enum(['nftables', 'none'])
      .default('nftables')
      .describe('nftables: the kernel filter on this host (root); none: compute and publish the plan only.'),
    availability: z
      .number()
      .positive()
      .optional()
      .describe('A fixed availability instead of the measured one (C2.4; static capacities).'),
    intervalMs: millis(100, 60_000)
      .default(2000)
      .describe('How often availability is measured and published.'),
    table: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, {
        error: (i) => `expected an nftables table name, got ${JSON.stringify(i.input)}`,
      })
      .default('usher_cluster'),
    seed: range(0, 0xffffffff).default(0x5eed).describe('jhash seed; every member must use the same.'),
    buckets: range(1, 32000)
      .default(16000)
      .describe(
        'Buckets of the value space (docs/cluster.md): shares are proportional within about √(p(1−p)/buckets); every member must use the same.',
      ),
  })
  .describe(
    'Self-selecting cluster member (C, seed 002): publishes its availability through the registry, computes every member’s ranges from the same view, and filters new flows to the virtual IP by connection value. Changes need a restart.',
  );

const hostPort = z.string().regex(/^(\[[0-9a-f:.]+\]|[^:\s[\]]+):\d{1,5}$/i, {
  error: (i) => `expected host:port (IPv6 as [addr]:port), got ${JSON.stringify(i.input)}`,
});

const agent = z
  .strictObject({
    id: name.describe('Member id the agent registers and answers as.'),
    pool: name.describe('Pool the member joins (the assigner maps apps to pools).'),
    app: name.describe('App named in probes.'),
    host: host.default('0.0.0.0').describe('UDP listen address of the public port.'),
    port: listenPort.describe('Public UDP port: probes, heartbeats and the app traffic it carries.'),
    advertise: hostPort
      .optional()
      .describe('Address and port clients are told to use (default: the listen address and port).'),
    upstream: hostPort.describe(
      'The real server (an IP address and port, usually on loopback) the sessions’ datagrams are carried to.',
    ),
    site: name.default('local'),
    group: range(0, 1000).default(0).describe('Priority group of the member.'),
    weight: z.number().positive().max(1e6).default(1).describe('Weight of the member.'),
    incarnations: z.array(name).min(1).optional().describe('Incarnations the server hosts (default: any).'),
    assigners: z
      .array(host)
      .optional()
      .describe('Addresses allowed to send FORWARD and NOTIFY (default: loopback only).'),
    sessionIdleMs: millis(1000, 86_400_000).default(30_000).describe('A session silent this long ends.'),
    maxSessions: range(1, 1_000_000).default(10_000).describe('Sessions carried at once.'),
    reportIntervalMs: millis(100, 60_000)
      .default(1000)
      .describe('How often users per incarnation are reported.'),
  })
  .describe(
    'Probe agent (P, seed 000) for a server that does not speak the probe protocol: it owns the public UDP port, answers the protocol, and carries each session’s datagrams to `upstream` over one socket per session. Changes need a restart.',
  );

export const configSchema = z
  .strictObject({
    registry: registry.default({ kind: 'memory' }),
    admin: admin.optional(),
    log: log.default({ level: 'info', format: 'auto' }),
    pools: z.record(name, pool).default({}).describe('Pools by name.'),
    demo: demo.optional(),
    assigner: assignerSchema.optional(),
    agents: z.array(agent).default([]).describe('Probe agents this process runs.'),
    list: list.optional(),
    cluster: cluster.optional(),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, string>();
    for (const [poolName, p] of Object.entries(cfg.pools)) {
      p.members.forEach((m, i) => {
        const where = `pools.${poolName}.members[${i}]`;
        const other = seen.get(m.id);
        if (other) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', poolName, 'members', i, 'id'],
            message: `duplicate member id ${JSON.stringify(m.id)} (also at ${other})`,
          });
        } else seen.set(m.id, where);
      });
      try {
        resolvePoolHealth(p.health, `pools.${poolName}.health`);
      } catch (error) {
        if (!(error instanceof InvalidArgumentError)) throw error;
        // The core says `<where>.<key>: expected ...`; point at that key.
        const m = /\.(\w+): (expected .*)$/s.exec(error.message);
        ctx.addIssue({
          code: 'custom',
          path: m ? ['pools', poolName, 'health', m[1]!] : ['pools', poolName, 'health'],
          message: m ? m[2]! : error.message,
        });
      }
      const problem = policyProblem(p.policy);
      if (problem) {
        // The core says `... option <key>: <reason>`; point at that key when it names one.
        const m = /option (\w+): (.*)$/s.exec(problem);
        ctx.addIssue({
          code: 'custom',
          path: m ? ['pools', poolName, 'policy', m[1]!] : ['pools', poolName, 'policy'],
          message: m ? m[2]! : problem,
        });
      }
    }
    for (const [i, s] of (cfg.demo?.traffic ?? []).entries()) {
      if (!(s.pool in cfg.pools)) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'traffic', i, 'pool'],
          message: `unknown pool ${JSON.stringify(s.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
    }
    for (const [app, a] of Object.entries(cfg.assigner?.apps ?? {})) {
      if (!Object.hasOwn(cfg.pools, a.pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['assigner', 'apps', app, 'pool'],
          message: `unknown pool ${JSON.stringify(a.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
      const dup = a.incarnations?.find((id, i) => a.incarnations!.indexOf(id) !== i);
      if (dup !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['assigner', 'apps', app, 'incarnations'],
          message: `duplicate incarnation ${JSON.stringify(dup)}`,
        });
      }
    }
    for (const [i, w] of (cfg.demo?.worlds ?? []).entries()) {
      if (!Object.hasOwn(cfg.pools, w.pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'worlds', i, 'pool'],
          message: `unknown pool ${JSON.stringify(w.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
    }
    for (const [i, a] of cfg.agents.entries()) {
      if (!Object.hasOwn(cfg.pools, a.pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['agents', i, 'pool'],
          message: `unknown pool ${JSON.stringify(a.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
      const other = seen.get(a.id);
      if (other) {
        ctx.addIssue({
          code: 'custom',
          path: ['agents', i, 'id'],
          message: `duplicate member id ${JSON.stringify(a.id)} (also at ${other})`,
        });
      } else seen.set(a.id, `agents[${i}]`);
      for (const key of ['upstream', 'advertise'] as const) {
        const v = a[key];
        if (v === undefined) continue;
        let problem: string | undefined;
        try {
          if (parseAddress(parseEndpoint(v).address) === undefined)
            problem = `expected an IP address (not a host name) and port, got ${JSON.stringify(v)}`;
        } catch (error) {
          problem = (error as Error).message;
        }
        if (problem) ctx.addIssue({ code: 'custom', path: ['agents', i, key], message: problem });
      }
    }
    for (const [i, st] of (cfg.demo?.streams ?? []).entries()) {
      if (!Object.hasOwn(cfg.pools, st.pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'streams', i, 'pool'],
          message: `unknown pool ${JSON.stringify(st.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
    }
    for (const [i, v] of (cfg.demo?.viewers ?? []).entries()) {
      if (!cfg.list) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'viewers', i],
          message: 'demo viewers fetch the list from this process: add a `list` section',
        });
      } else if (!Object.hasOwn(cfg.pools, v.pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'viewers', i, 'pool'],
          message: `unknown pool ${JSON.stringify(v.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
    }
    for (const [i, p] of (cfg.list?.pools ?? []).entries()) {
      if (!Object.hasOwn(cfg.pools, p)) {
        ctx.addIssue({
          code: 'custom',
          path: ['list', 'pools', i],
          message: `unknown pool ${JSON.stringify(p)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
    }
    if (cfg.cluster && !Object.hasOwn(cfg.pools, cfg.cluster.pool)) {
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'pool'],
        message: `unknown pool ${JSON.stringify(cfg.cluster.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
      });
    }
    if (cfg.cluster?.exchange === 'coordinator' && cfg.registry.kind !== 'etcd') {
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'exchange'],
        message: `coordinator mode elects its coordinator through etcd: needs registry kind etcd (kind is ${JSON.stringify(cfg.registry.kind)})`,
      });
    }
    if (cfg.cluster && parseAddress(cfg.cluster.vip) === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'vip'],
        message: `expected an IP address, got ${JSON.stringify(cfg.cluster.vip)}`,
      });
    }
    if (cfg.registry.etcd && cfg.registry.kind !== 'etcd') {
      ctx.addIssue({
        code: 'custom',
        path: ['registry', 'etcd'],
        message: `etcd settings need kind: etcd (kind is ${JSON.stringify(cfg.registry.kind)})`,
      });
    }
    if (cfg.registry.mesh && cfg.registry.kind !== 'mesh') {
      ctx.addIssue({
        code: 'custom',
        path: ['registry', 'mesh'],
        message: `mesh settings need kind: mesh (kind is ${JSON.stringify(cfg.registry.kind)})`,
      });
    }
    if (cfg.registry.mesh && cfg.registry.mesh.suspicionMinMs > cfg.registry.mesh.suspicionMaxMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['registry', 'mesh', 'suspicionMinMs'],
        message: `expected at most suspicionMaxMs (${cfg.registry.mesh.suspicionMaxMs}), got ${cfg.registry.mesh.suspicionMinMs}`,
      });
    }
    for (const [i, seed] of (cfg.registry.mesh?.seeds ?? []).entries()) {
      try {
        parseEndpoint(seed);
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          path: ['registry', 'mesh', 'seeds', i],
          message: (error as Error).message,
        });
      }
    }
    if (cfg.registry.mesh?.advertise !== undefined) {
      try {
        parseEndpoint(cfg.registry.mesh.advertise);
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          path: ['registry', 'mesh', 'advertise'],
          message: (error as Error).message,
        });
      }
    }
    if ((cfg.demo?.players ?? []).length > 0 && !cfg.assigner) {
      ctx.addIssue({
        code: 'custom',
        path: ['demo', 'players'],
        message: 'demo players probe the assigner: add an `assigner` section',
      });
    }
    for (const [i, s] of (cfg.demo?.servers ?? []).entries()) {
      if (!(s.pool in cfg.pools)) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'servers', i, 'pool'],
          message: `unknown pool ${JSON.stringify(s.pool)} (declared: ${Object.keys(cfg.pools).join(', ') || 'none'})`,
        });
      }
    }
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type PoolConfig = Config['pools'][string];
export type MemberConfig = PoolConfig['members'][number];
export type HealthCheckConfig = PoolConfig['health'];

/** The core's own validation of a policy's options (one source of truth), as a message. */
function policyProblem(cfg: { name: string } & Record<string, unknown>): string | undefined {
  const { name, ...options } = cfg;
  try {
    createPolicy(name, options);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error.message;
    throw error;
  }
}
