/**
 * The server list a stream client fetches (seed 003, L3.2–L3.4), checked with a small validator
 * of its own (the client never trusts network input), turned into core MemberViews and chosen
 * from with a core policy. Isomorphic: no Node-only import.
 *
 *   { "version": 1, "pool": "live", "revision": 42, "generatedAt": <ms>,
 *     "servers": [ { "id", "status", "users", "capacity", "group", "weight", "site",
 *                    "address", "url", "labels" } ] }
 */
import {
  eligible,
  emptyLoad,
  HEALTH_STATES,
  type HealthState,
  type MemberView,
  makeMember,
} from '../core/model.js';
import type { Policy } from '../core/policy/index.js';
import { StreamListError } from './stream-errors.js';

/** Largest list document the client reads, in characters. */
export const MAX_LIST_CHARS = 1 << 20;

/** One server of the list. */
export interface StreamListServer {
  readonly id: string;
  readonly status: HealthState;
  readonly users: number;
  readonly capacity: number;
  readonly group: number;
  readonly weight: number;
  readonly site: string;
  readonly address?: string;
  /** The stream endpoint (`ws://` or `wss://`); servers without one are never chosen. */
  readonly url?: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The list document. */
export interface StreamListDocument {
  readonly version: 1;
  readonly pool: string;
  readonly revision: number;
  readonly generatedAt: number;
  readonly servers: readonly StreamListServer[];
}

/** The fetch a stream client uses (`globalThis.fetch` fits). */
export type FetchLike = (
  url: string,
  init: { signal: AbortSignal; headers: Record<string, string> },
) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

function isStreamUrl(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 2048) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'ws:' || u.protocol === 'wss:';
  } catch {
    return false;
  }
}

function parseLabels(v: unknown): Record<string, string> | undefined {
  if (v === undefined) return {};
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') return undefined;
    out[k] = value;
  }
  return out;
}

/** One server entry, or undefined when it is unusable (no id, unknown status, a wrong type). */
export function parseListServer(v: unknown): StreamListServer | undefined {
  if (!isObject(v)) return undefined;
  const { id, status, users = 0, capacity = 100, group = 0, weight = 1, site = '', address, url } = v;
  if (typeof id !== 'string' || id === '' || id.length > 256) return undefined;
  if (typeof status !== 'string' || !(HEALTH_STATES as readonly string[]).includes(status)) return undefined;
  if (!isCount(users) || !isPositive(capacity) || !isPositive(weight)) return undefined;
  if (!(Number.isSafeInteger(group) && (group as number) >= 0) || typeof site !== 'string') return undefined;
  if (address !== undefined && typeof address !== 'string') return undefined;
  const labels = parseLabels(v.labels);
  if (!labels) return undefined;
  return {
    id,
    status: status as HealthState,
    users,
    capacity,
    group: group as number,
    weight,
    site,
    ...(address === undefined ? {} : { address }),
    // A url that is not ws:// or wss:// is as good as none.
    ...(isStreamUrl(url) ? { url } : {}),
    labels,
  };
}

/**
 * Checks a decoded list document. Returns undefined when its frame is wrong (version, pool,
 * revision, servers); server entries that are unusable are left out, and so are repeated ids
 * (the first wins). Never throws.
 */
export function parseListDocument(v: unknown): StreamListDocument | undefined {
  if (!isObject(v) || v.version !== 1) return undefined;
  const { pool, revision, generatedAt, servers } = v;
  if (typeof pool !== 'string' || !isCount(revision) || !isCount(generatedAt) || !Array.isArray(servers))
    return undefined;
  const seen = new Set<string>();
  const out: StreamListServer[] = [];
  for (const entry of servers) {
    const s = parseListServer(entry);
    if (!s || seen.has(s.id)) continue;
    seen.add(s.id);
    out.push(s);
  }
  return { version: 1, pool, revision, generatedAt, servers: out };
}

/**
 * The list's servers that have a stream url, as core MemberViews: weight := capacity (and a
 * `capacity` label), health := status, load.users (and connections) := users.
 */
export function listMemberViews(doc: StreamListDocument): MemberView[] {
  const views: MemberView[] = [];
  for (const s of doc.servers) {
    if (s.url === undefined) continue;
    const member = makeMember({
      id: s.id,
      pool: doc.pool,
      addresses: [s.address ?? new URL(s.url).hostname],
      site: s.site,
      group: s.group,
      weight: s.capacity,
      labels: { ...s.labels, capacity: String(s.capacity) },
    });
    views.push({
      member,
      health: s.status,
      load: { ...emptyLoad(doc.generatedAt), users: s.users, connections: s.users },
    });
  }
  return views;
}

/**
 * Chooses a server with `policy` among those with a url, leaving out the ids in `exclude` when
 * any other is eligible (seed 003, L3.6: not the server that just failed, unless it is the only
 * one left). Undefined when none is eligible.
 */
export function chooseServer(
  doc: StreamListDocument,
  policy: Policy,
  exclude: ReadonlySet<string> = new Set(),
): StreamListServer | undefined {
  const views = listMemberViews(doc);
  const others = views.filter((v) => !exclude.has(v.member.id));
  const members = eligible(others).length > 0 ? others : views;
  const picked = policy.pick({ members });
  return picked && doc.servers.find((s) => s.id === picked.id);
}

/** Fetches and checks one list document; rejects with StreamListError (timeout, HTTP status, not a list). */
export async function fetchListDocument(
  url: string,
  fetch: FetchLike,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<StreamListDocument> {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal.addEventListener('abort', onAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    let text: string;
    try {
      const res = await fetch(url, { signal: controller.signal, headers: { accept: 'application/json' } });
      if (!res.ok) throw new StreamListError(url, `expected HTTP 200, got ${res.status}`);
      text = await res.text();
    } catch (error) {
      if (error instanceof StreamListError) throw error;
      if (timedOut) throw new StreamListError(url, `no answer within ${timeoutMs} ms`);
      throw new StreamListError(url, `request failed (${String((error as Error)?.message ?? error)})`, {
        cause: error,
      });
    }
    if (text.length > MAX_LIST_CHARS)
      throw new StreamListError(url, `expected at most ${MAX_LIST_CHARS} characters, got ${text.length}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StreamListError(url, 'expected JSON, got something else');
    }
    const doc = parseListDocument(json);
    if (!doc)
      throw new StreamListError(url, 'expected a list document {version: 1, pool, revision, servers}');
    return doc;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
