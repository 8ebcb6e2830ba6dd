/**
 * The mesh wire messages (docs/protocols/mesh.md) and one small hand-written validator per
 * type. Anything from the network goes through `parseMessage` before it is used.
 */
import { HEALTH_STATES, type HealthState, type LoadReport, type Member } from '../../core/model.js';

export const PROTOCOL_VERSION = 1;

/** A write's version: a Lamport clock value, ties broken by the writing node's id. */
export interface Version {
  readonly c: number;
  readonly n: string;
}

export interface DefinitionField {
  readonly m: Member;
  /** Node that owns the member (runs its lease). */
  readonly owner: string;
  /** Lease TTL in ms, null without lease. */
  readonly ttl: number | null;
  readonly ver: Version;
}

export interface HealthField {
  readonly s: HealthState;
  readonly r: string;
  /** Written by the mesh's failure detector (not by an operator or a health check). */
  readonly mesh: boolean;
  readonly ver: Version;
}

export interface LoadField {
  readonly l: LoadReport | null;
  readonly ver: Version;
}

export interface GoneField {
  readonly r: string;
  readonly ver: Version;
}

/** A member's replicated record; every field is last-writer-wins on its own version. */
export interface MemberRecord {
  readonly id: string;
  readonly def?: DefinitionField;
  readonly health?: HealthField;
  readonly load?: LoadField;
  /** Tombstone: the member is gone unless `def` is newer. */
  readonly gone?: GoneField;
}

export interface AssignmentRecord {
  readonly key: string;
  readonly ver: Version;
  /** Absent: a tombstone (the key was deleted). */
  readonly set?: { readonly value: unknown; readonly at: number };
}

export type NodeState = 'alive' | 'suspect' | 'dead' | 'left';
export const NODE_STATES: readonly NodeState[] = ['alive', 'suspect', 'dead', 'left'];

export interface NodeRecord {
  readonly id: string;
  readonly addr: string;
  readonly state: NodeState;
  readonly inc: number;
  /** Who suspected it (suspect only). */
  readonly from?: string;
  /** The suspector found the node's port still accepting connections (the process exists). */
  readonly open?: boolean;
}

/** What a probe of a node found: an answer, a refused connection, an open port without answer, nothing. */
export type ProbeOutcome = 'ack' | 'refused' | 'open' | 'timeout';
const OUTCOMES: readonly ProbeOutcome[] = ['ack', 'refused', 'open', 'timeout'];

export type Message =
  | {
      readonly t: 'hello';
      readonly v: number;
      readonly id: string;
      readonly addr: string;
      readonly inc: number;
      readonly nonce: string;
      readonly auth: boolean;
    }
  | { readonly t: 'auth'; readonly mac: string }
  | { readonly t: 'hb'; readonly inc: number }
  | {
      readonly t: 'update';
      readonly members?: readonly MemberRecord[];
      readonly assignments?: readonly AssignmentRecord[];
    }
  | { readonly t: 'nodes'; readonly nodes: readonly NodeRecord[] }
  | { readonly t: 'renew'; readonly id: string }
  | { readonly t: 'ping'; readonly seq: number }
  | { readonly t: 'ack'; readonly seq: number }
  | { readonly t: 'ping-req'; readonly seq: number; readonly target: string }
  | { readonly t: 'ping-res'; readonly seq: number; readonly target: string; readonly result: ProbeOutcome }
  | { readonly t: 'leave'; readonly inc: number };

export type MessageType = Message['t'];

export type ParseResult =
  | { readonly ok: true; readonly message: Message }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown-type'; readonly detail: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 1024;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function isRecordOf(v: unknown, check: (x: unknown) => boolean): boolean {
  return isObj(v) && Object.values(v).every(check);
}

export function isVersion(v: unknown): v is Version {
  return isObj(v) && isCount(v.c) && isId(v.n);
}

export function isMember(v: unknown): v is Member {
  return (
    isObj(v) &&
    isId(v.id) &&
    isStr(v.pool) &&
    Array.isArray(v.addresses) &&
    v.addresses.every(isStr) &&
    isRecordOf(v.ports, isNum) &&
    isStr(v.site) &&
    isNum(v.group) &&
    isNum(v.weight) &&
    isRecordOf(v.labels, isStr)
  );
}

export function isLoadReport(v: unknown): v is LoadReport {
  return (
    isObj(v) &&
    isNum(v.users) &&
    isNum(v.connections) &&
    isNum(v.inFlight) &&
    isNum(v.cpu) &&
    isRecordOf(v.custom, isNum) &&
    isNum(v.timestamp)
  );
}

export function isHealthState(v: unknown): v is HealthState {
  return HEALTH_STATES.includes(v as HealthState);
}

function isMemberRecord(v: unknown): v is MemberRecord {
  if (!isObj(v) || !isId(v.id)) return false;
  const { def, health, load, gone } = v;
  if (def !== undefined) {
    if (!isObj(def) || !isMember(def.m) || def.m.id !== v.id || !isId(def.owner) || !isVersion(def.ver))
      return false;
    if (def.ttl !== null && !(isNum(def.ttl) && def.ttl > 0)) return false;
  }
  if (health !== undefined) {
    if (!isObj(health) || !isHealthState(health.s) || !isStr(health.r) || typeof health.mesh !== 'boolean')
      return false;
    if (!isVersion(health.ver)) return false;
  }
  if (load !== undefined) {
    if (!isObj(load) || !isVersion(load.ver) || (load.l !== null && !isLoadReport(load.l))) return false;
  }
  if (gone !== undefined && (!isObj(gone) || !isStr(gone.r) || !isVersion(gone.ver))) return false;
  return true;
}

function isAssignmentRecord(v: unknown): v is AssignmentRecord {
  if (!isObj(v) || !isStr(v.key) || !isVersion(v.ver)) return false;
  if (v.set === undefined) return true;
  return isObj(v.set) && 'value' in v.set && isNum(v.set.at);
}

function isNodeRecord(v: unknown): v is NodeRecord {
  return (
    isObj(v) &&
    isId(v.id) &&
    isStr(v.addr) &&
    NODE_STATES.includes(v.state as NodeState) &&
    isCount(v.inc) &&
    (v.from === undefined || isId(v.from)) &&
    (v.open === undefined || typeof v.open === 'boolean')
  );
}

const optionalArrayOf = (v: unknown, check: (x: unknown) => boolean): boolean =>
  v === undefined || (Array.isArray(v) && v.every(check));

const VALIDATORS: Record<MessageType, (m: Obj) => boolean> = {
  hello: (m) =>
    isCount(m.v) &&
    (m.v !== PROTOCOL_VERSION ||
      (isId(m.id) &&
        isStr(m.addr) &&
        isCount(m.inc) &&
        isStr(m.nonce) &&
        m.nonce.length >= 16 &&
        typeof m.auth === 'boolean')),
  auth: (m) => isStr(m.mac) && m.mac.length <= 256,
  hb: (m) => isCount(m.inc),
  update: (m) =>
    optionalArrayOf(m.members, isMemberRecord) && optionalArrayOf(m.assignments, isAssignmentRecord),
  nodes: (m) => Array.isArray(m.nodes) && m.nodes.every(isNodeRecord),
  renew: (m) => isId(m.id),
  ping: (m) => isCount(m.seq),
  ack: (m) => isCount(m.seq),
  'ping-req': (m) => isCount(m.seq) && isId(m.target),
  'ping-res': (m) => isCount(m.seq) && isId(m.target) && OUTCOMES.includes(m.result as ProbeOutcome),
  leave: (m) => isCount(m.inc),
};

/**
 * Checks a decoded frame. A `hello` of another protocol version passes with only `t` and `v`
 * checked, so the receiver can refuse it with a clear message.
 */
export function parseMessage(value: unknown): ParseResult {
  if (!isObj(value) || !isStr(value.t)) {
    return { ok: false, reason: 'malformed', detail: 'expected an object with a string field t' };
  }
  if (!Object.hasOwn(VALIDATORS, value.t)) {
    return { ok: false, reason: 'unknown-type', detail: `unknown message type ${JSON.stringify(value.t)}` };
  }
  const type = value.t as MessageType;
  if (!VALIDATORS[type](value)) {
    return { ok: false, reason: 'malformed', detail: `malformed ${type} message` };
  }
  return { ok: true, message: value as unknown as Message };
}
