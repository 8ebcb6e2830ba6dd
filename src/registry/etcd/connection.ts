/**
 * The etcd client and the few raw calls the registry makes: range reads, transactions and
 * lease calls by lease id (so any instance can renew a lease another one granted).
 */
import { Etcd3, type ICompare, type IRequestOp, type ITxnResponse } from 'etcd3';
import type { ResolvedEtcdOptions } from './options.js';
import type { Kv } from './replica.js';

/** A backoff for re-opening the watch: 100 ms doubling up to `maxMs` (cockatiel's IBackoff shape). */
interface Backoff {
  readonly duration: number;
  next(): Backoff;
}

function backoff(ms: number, maxMs: number): Backoff {
  return { duration: ms, next: () => backoff(Math.min(maxMs, ms * 2), maxMs) };
}

export function createClient(options: ResolvedEtcdOptions): Etcd3 {
  const { dialTimeoutMs } = options;
  return new Etcd3({
    hosts: [...options.endpoints],
    // Unary calls get a deadline; streams (watch, keep-alive) are bounded by the code using them.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + dialTimeoutMs }),
    faultHandling: { watchBackoff: backoff(50, options.reconnectMaxMs) },
    // Detect a silently dead connection (no RST): ping every 10 s, give up after 5 s without an
    // answer. etcd refuses pings more frequent than its --grpc-keepalive-min-time (5 s).
    grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 },
  });
}

/** The end of the range of every key that starts with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

const bytes = (key: string): Buffer => Buffer.from(key, 'utf8');

export const op = {
  /** Puts `value`, attached to `lease` (none when undefined or '0'). */
  put(key: string, value: string | Buffer, lease?: string): IRequestOp {
    const v = typeof value === 'string' ? bytes(value) : value;
    return { request_put: { key: bytes(key), value: v, ...(lease && lease !== '0' ? { lease } : {}) } };
  },
  /** Replaces the value and keeps the key's current lease (the key must exist). */
  putKeepLease(key: string, value: string): IRequestOp {
    return { request_put: { key: bytes(key), value: bytes(value), ignore_lease: true } };
  },
  delete(key: string): IRequestOp {
    return { request_delete_range: { key: bytes(key) } };
  },
  get(key: string): IRequestOp {
    return { request_range: { key: bytes(key) } };
  },
};

export const cmp = {
  /** The key was created at `revision` (0: it does not exist). */
  created(key: string, revision: number): ICompare {
    return { key: bytes(key), target: 'Create', result: 'Equal', create_revision: revision };
  },
  exists(key: string): ICompare {
    return { key: bytes(key), target: 'Create', result: 'Greater', create_revision: 0 };
  },
  /** The key was last written at `revision` (0: it does not exist). */
  modified(key: string, revision: number): ICompare {
    return { key: bytes(key), target: 'Mod', result: 'Equal', mod_revision: revision };
  },
  lease(key: string, lease: string): ICompare {
    return { key: bytes(key), target: 'Lease', result: 'Equal', lease };
  },
};

export interface Txn {
  readonly compare: ICompare[];
  readonly success: IRequestOp[];
  readonly failure?: IRequestOp[];
}

export function txn(client: Etcd3, t: Txn): Promise<ITxnResponse> {
  return client.kv.txn({ compare: t.compare, success: t.success, failure: t.failure ?? [] });
}

/** The key-values of the `index`-th range op of a transaction's response. */
export function rangeResult(response: ITxnResponse, index: number): Kv[] {
  return (response.responses[index]?.response_range?.kvs ?? []) as Kv[];
}

/** Every key under `prefix` and the revision of that state (one linearizable read). */
export async function readPrefix(client: Etcd3, prefix: string): Promise<{ kvs: Kv[]; revision: number }> {
  const key = bytes(prefix);
  const response = await client.kv.range({ key, range_end: prefixEnd(key) });
  return { kvs: response.kvs as Kv[], revision: Number(response.header.revision) };
}

/** Grants a lease; resolves to its id and the TTL etcd chose (it raises TTLs below its minimum). */
export async function grantLease(client: Etcd3, ttlSec: number): Promise<{ id: string; ttlSec: number }> {
  const response = await client.leaseClient.leaseGrant({ TTL: ttlSec });
  return { id: response.ID, ttlSec: Number(response.TTL) };
}

export async function revokeLease(client: Etcd3, id: string): Promise<void> {
  await client.leaseClient.leaseRevoke({ ID: id });
}

/** One keep-alive of a lease by id; resolves to its new TTL in seconds, 0 when the lease is gone. */
export async function keepAliveOnce(client: Etcd3, id: string, timeoutMs: number): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
  try {
    return await new Promise<number>((resolve, reject) => {
      stream.on('data', (response) => resolve(Number(response.TTL)));
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('keep-alive stream ended without an answer')));
      stream.write({ ID: id });
    });
  } finally {
    stream.end();
  }
}
