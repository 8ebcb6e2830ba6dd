/**
 * The key layout of the etcd registry under its prefix (docs/protocols/etcd.md):
 *
 *   <prefix>members/<id>       member definition (JSON Member), on the member's lease if it has a TTL
 *   <prefix>health/<id>        { health, reason }, on the same lease
 *   <prefix>load/<id>          the latest LoadReport, on the same lease
 *   <prefix>removed/<id>       { reason }, written in the deregister transaction, on a short lease
 *   <prefix>assignments/<key>  { value, updatedAt }, no lease
 *
 * One key per field, so a balancer's health write and a member's load report never clobber
 * each other. Values are UTF-8 JSON; parsing them never throws (a bad value is dropped).
 */
import type { HealthState, LoadReport, Member } from '../../core/model.js';
import { isHealthState, isLoadReport, isMember } from '../mesh/messages.js';

export type KeyKind = 'members' | 'health' | 'load' | 'removed' | 'assignments';

const KINDS: readonly KeyKind[] = ['members', 'health', 'load', 'removed', 'assignments'];

export interface ParsedKey {
  readonly kind: KeyKind;
  /** The member id, or the assignment key. */
  readonly name: string;
}

export class KeyLayout {
  constructor(readonly prefix: string) {}

  key(kind: KeyKind, name: string): string {
    return `${this.prefix}${kind}/${name}`;
  }

  /** Which record a full key is; undefined for keys this version does not know. */
  parse(key: string): ParsedKey | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) return undefined;
    const kind = rest.slice(0, slash) as KeyKind;
    if (!KINDS.includes(kind)) return undefined;
    return { kind, name: rest.slice(slash + 1) };
  }
}

export interface HealthValue {
  readonly health: HealthState;
  readonly reason: string;
}

export interface RemovedValue {
  readonly reason: string;
}

export interface AssignmentValue {
  readonly value: unknown;
  readonly updatedAt: number;
}

function json(bytes: Buffer | string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function decodeMember(bytes: Buffer, id: string): Member | undefined {
  const v = json(bytes);
  return isMember(v) && v.id === id ? v : undefined;
}

export function decodeHealth(bytes: Buffer): HealthValue | undefined {
  const v = json(bytes);
  if (!isObject(v) || !isHealthState(v.health)) return undefined;
  return { health: v.health, reason: typeof v.reason === 'string' ? v.reason : '' };
}

export function decodeLoad(bytes: Buffer): LoadReport | undefined {
  const v = json(bytes);
  return isLoadReport(v) ? v : undefined;
}

export function decodeRemoved(bytes: Buffer): RemovedValue | undefined {
  const v = json(bytes);
  return isObject(v) && typeof v.reason === 'string' ? { reason: v.reason } : undefined;
}

export function decodeAssignment(bytes: Buffer): AssignmentValue | undefined {
  const v = json(bytes);
  // A missing `value` is an assignment of `undefined` (JSON.stringify leaves it out).
  if (!isObject(v) || typeof v.updatedAt !== 'number') return undefined;
  return { value: v.value, updatedAt: v.updatedAt };
}

export function encode(value: unknown): string {
  return JSON.stringify(value);
}
