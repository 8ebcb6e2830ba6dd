/**
 * The server list document (seed 003, L3.3): what any Usher server answers at `/usher/list`,
 * and what a client reads to choose a server itself. Pure and browser-safe: this file imports
 * nothing Node-only (the client SDK bundles it).
 *
 *   { "version": 1, "pool": "live", "revision": 42, "generatedAt": 1700000000000,
 *     "servers": [ { "id": "live-1", "status": "up", "users": 12, "capacity": 100, "group": 0,
 *                    "weight": 1, "site": "local", "address": "127.0.0.1",
 *                    "url": "ws://127.0.0.1:9301/usher/stream", "labels": {} } ] }
 */
import {
  capacity,
  HEALTH_STATES,
  type HealthState,
  type LoadReport,
  type Member,
  type MemberView,
} from '../core/model.js';
import { ListDocumentInvalidError } from '../errors.js';

export { ListDocumentInvalidError };

import { DEFAULT_STREAM_PATH } from './stream-protocol.js';

/** The version of the document format this module writes and reads. */
export const LIST_VERSION = 1;

/** The path the list service answers on (`/usher/list` for the default pool, `/usher/list/<pool>`). */
export const LIST_PATH = '/usher/list';

/** One server of the list. */
export interface ListEntry {
  readonly id: string;
  readonly status: HealthState;
  /** Users currently served (the member's last load report; 0 without one). */
  readonly users: number;
  /** Capacity in users (`capacity(member)`: the `capacity` label, else weight × 100). */
  readonly capacity: number;
  /** Priority group: 0 primary, 1 first fallback, ... */
  readonly group: number;
  readonly weight: number;
  readonly site: string;
  /** The member's primary address ('' when it has none). */
  readonly address: string;
  /** Where a client connects; absent when the server does not know. */
  readonly url?: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The list of every server of one pool. */
export interface ListDocument {
  readonly version: typeof LIST_VERSION;
  readonly pool: string;
  /** Registry revision the document was built from. */
  readonly revision: number;
  /** Milliseconds since the epoch when the document was built. */
  readonly generatedAt: number;
  /** Sorted by id. */
  readonly servers: readonly ListEntry[];
}

/**
 * A member's stream URL: its `url` label when set; else, when the member has a `stream` port or
 * a `streamPath` label, `ws://<address>:<ports.stream ?? ports.main><streamPath ?? /usher/stream>`
 * (IPv6 addresses in brackets); else undefined (also when no address or port is known).
 */
export function streamUrlOf(member: Member): string | undefined {
  const label = member.labels.url;
  if (label !== undefined && label !== '') return label;
  const streamPath = member.labels.streamPath;
  const streamPort = member.ports.stream;
  if (streamPort === undefined && streamPath === undefined) return undefined;
  const port = streamPort ?? member.ports.main;
  const address = member.addresses[0];
  if (port === undefined || address === undefined || address === '') return undefined;
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  const path = streamPath ?? DEFAULT_STREAM_PATH;
  return `ws://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`;
}

/** A count fit for the document: finite and >= 0, else 0. */
function count(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n >= 0 ? n : 0;
}

function byId(a: ListEntry, b: ListEntry): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Builds the document of `pool` from registry views (views of other pools are left out).
 * `urlOf` supplies the url of a member for which `streamUrlOf` knows none.
 */
export function toListDocument(
  pool: string,
  views: readonly MemberView[],
  revision: number,
  now: number,
  urlOf?: (m: Member) => string | undefined,
): ListDocument {
  const servers: ListEntry[] = [];
  for (const v of views) {
    const m = v.member;
    if (m.pool !== pool) continue;
    const url = streamUrlOf(m) ?? (urlOf?.(m) || undefined); // '' from urlOf means no url
    servers.push({
      id: m.id,
      status: v.health,
      users: count(v.load?.users),
      capacity: count(capacity(m)),
      group: m.group,
      weight: count(m.weight),
      site: m.site,
      address: m.addresses[0] ?? '',
      ...(url === undefined ? {} : { url }),
      labels: { ...m.labels },
    });
  }
  servers.sort(byId);
  return { version: LIST_VERSION, pool, revision, generatedAt: now, servers };
}

// ---- validation (hand-written: tiny and browser-safe) ----

type Obj = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

function fail(path: string, expected: string, got: unknown): never {
  throw new ListDocumentInvalidError(path, `expected ${expected}, got ${describe(got)}`);
}

function object(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object', v);
  return v as Obj;
}

function string(o: Obj, key: string, path: string, nonEmpty = false): string {
  const v = o[key];
  if (typeof v !== 'string' || (nonEmpty && v === ''))
    fail(path, nonEmpty ? 'a non-empty string' : 'a string', v);
  return v;
}

function number(o: Obj, key: string, path: string, integer = false): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v)))
    fail(path, integer ? 'an integer >= 0' : 'a finite number >= 0', v);
  return v;
}

function entry(raw: unknown, path: string): ListEntry {
  const o = object(raw, path);
  const status = o.status;
  if (typeof status !== 'string' || !(HEALTH_STATES as readonly string[]).includes(status))
    fail(`${path}.status`, `one of ${HEALTH_STATES.join(', ')}`, status);
  const labelsRaw = object(o.labels, `${path}.labels`);
  // fromEntries defines own properties, so a label named `__proto__` stays a label.
  const labels = Object.fromEntries(
    Object.keys(labelsRaw).map((key) => [key, string(labelsRaw, key, `${path}.labels.${key}`)]),
  );
  const url = o.url === undefined ? undefined : string(o, 'url', `${path}.url`, true);
  return {
    id: string(o, 'id', `${path}.id`, true),
    status: status as HealthState,
    users: number(o, 'users', `${path}.users`),
    capacity: number(o, 'capacity', `${path}.capacity`),
    group: number(o, 'group', `${path}.group`, true),
    weight: number(o, 'weight', `${path}.weight`),
    site: string(o, 'site', `${path}.site`),
    address: string(o, 'address', `${path}.address`),
    ...(url === undefined ? {} : { url }),
    labels,
  };
}

/**
 * Validates a parsed JSON value as a version-1 list document and returns a clean copy. Throws
 * ListDocumentInvalidError (code `USHER_ERR_LIST_INVALID`) naming the first bad field, e.g.
 * `servers[1].users: expected a finite number >= 0, got "12"`. Unknown fields are ignored (a
 * later server may add optional ones); a missing or different `version` and duplicate ids are
 * refused.
 */
export function parseListDocument(json: unknown): ListDocument {
  const o = object(json, '');
  if (o.version !== LIST_VERSION) fail('version', String(LIST_VERSION), o.version);
  const pool = string(o, 'pool', 'pool', true);
  const revision = number(o, 'revision', 'revision', true);
  const generatedAt = number(o, 'generatedAt', 'generatedAt');
  if (!Array.isArray(o.servers)) fail('servers', 'an array', o.servers);
  const seen = new Set<string>();
  const servers = o.servers.map((raw: unknown, i: number) => {
    const e = entry(raw, `servers[${i}]`);
    if (seen.has(e.id))
      throw new ListDocumentInvalidError(`servers[${i}].id`, `duplicate id ${describe(e.id)}`);
    seen.add(e.id);
    return e;
  });
  return { version: LIST_VERSION, pool, revision, generatedAt, servers };
}

/** Port of a url: its explicit port, else the scheme's default; undefined when unparseable. */
function urlPort(url: string | undefined): number | undefined {
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.port !== '') return Number(parsed.port);
  const defaults: Record<string, number> = { 'ws:': 80, 'http:': 80, 'wss:': 443, 'https:': 443 };
  return defaults[parsed.protocol];
}

/**
 * Turns a document into MemberViews for the core policies: `member.weight` is the entry's
 * capacity (so weighted-random draws by capacity and p2c compares users per capacity),
 * `ports.main` is the url's port (no ports without a url), `addresses` is `[address]` (empty
 * when the address is ''), health is the status, and the load report carries the users (also as
 * connections) stamped `generatedAt`. Labels are kept as they are.
 */
export function listToViews(doc: ListDocument): MemberView[] {
  return doc.servers.map((e) => {
    const port = urlPort(e.url);
    const member: Member = {
      id: e.id,
      pool: doc.pool,
      addresses: e.address === '' ? [] : [e.address],
      ports: port === undefined ? {} : { main: port },
      site: e.site,
      group: e.group,
      weight: e.capacity,
      labels: { ...e.labels },
    };
    const load: LoadReport = {
      users: e.users,
      connections: e.users,
      inFlight: 0,
      cpu: 0,
      custom: {},
      timestamp: doc.generatedAt,
    };
    return { member, health: e.status, load };
  });
}
