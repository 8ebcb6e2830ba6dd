/**
 * The etcd transactions on a member's keys. Each is guarded by compares on the keys it
 * depends on, so it acts on etcd's state, not on this instance's (possibly late) view: a write
 * on a member that is gone fails its compare, is retried from a fresh read, and ends in
 * NotFoundError. Errors of the etcd client are left to the caller to wrap.
 */
import type { Etcd3 } from 'etcd3';
import type { HealthState } from '../../core/model.js';
import { NotFoundError, RegistryError } from '../../errors.js';
import { cmp, grantLease, keepAliveOnce, op, rangeResult, revokeLease, type Txn, txn } from './connection.js';
import { decodeHealth, encode, type KeyLayout } from './keys.js';
import type { EtcdLogger } from './options.js';
import type { EtcdReplica, MemberEntry } from './replica.js';

/** What a guarded write needs to know about a member: the life of its key, its lease, its health. */
export type MemberGuard = Pick<MemberEntry, 'create' | 'lease' | 'health' | 'healthMod'>;

export interface MemberRead {
  readonly guard: MemberGuard | undefined;
  /** A removal record exists: the member was deregistered (not expired) lately. */
  readonly removed: boolean;
  /** The etcd revision of the read. */
  readonly revision: number;
}

const ATTEMPTS = 10;

export class MemberWrites {
  readonly #client: Etcd3;
  readonly #keys: KeyLayout;
  readonly #replica: EtcdReplica;
  readonly #logger: EtcdLogger;
  #ttlRaised = false;

  constructor(client: Etcd3, keys: KeyLayout, replica: EtcdReplica, logger: EtcdLogger) {
    this.#client = client;
    this.#keys = keys;
    this.#replica = replica;
    this.#logger = logger;
  }

  #conflict(id: string): RegistryError {
    return new RegistryError(`etcd: member ${id} kept changing; gave up after ${ATTEMPTS} attempts`);
  }

  /** The member as etcd has it now (one linearizable read). */
  async read(id: string): Promise<MemberRead> {
    const k = this.#keys;
    const r = await txn(this.#client, {
      compare: [],
      success: [op.get(k.key('members', id)), op.get(k.key('health', id)), op.get(k.key('removed', id))],
    });
    const m = rangeResult(r, 0)[0];
    const h = rangeResult(r, 1)[0];
    const guard = m && {
      create: Number(m.create_revision),
      lease: m.lease,
      health: (h && decodeHealth(h.value)?.health) ?? 'up',
      healthMod: h ? Number(h.mod_revision) : 0,
    };
    return { guard, removed: rangeResult(r, 2).length > 0, revision: Number(r.header.revision) };
  }

  /**
   * Runs the transaction `build` makes for the member, first from this instance's view, then
   * from fresh reads while its compares fail. `build` returns undefined when nothing needs
   * writing, which is trusted only on a fresh read. NotFoundError when the member is gone.
   */
  async #onMember(id: string, build: (m: MemberGuard) => Txn | undefined): Promise<void> {
    let guard: MemberGuard | undefined = this.#replica.get(id);
    let fresh = false;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const t = guard && build(guard);
      if (t) {
        if ((await txn(this.#client, t)).succeeded) return;
      } else if (fresh) {
        if (!guard) throw new NotFoundError('member', id);
        return;
      }
      guard = (await this.read(id)).guard;
      fresh = true;
    }
    throw this.#conflict(id);
  }

  /** Compares that hold while the member is the same registration on the same lease. */
  #same(id: string, m: MemberGuard) {
    const key = this.#keys.key('members', id);
    return [cmp.created(key, m.create), cmp.lease(key, m.lease)];
  }

  /**
   * Writes a member's definition. A new member gets `health` and, with `ttlMs`, a new lease
   * for all its keys. A known member keeps its health and load; with `ttlMs` they move to a
   * new lease with it, without it the member keeps its lease. Resolves to the etcd revision.
   */
  async register(id: string, definition: string, ttlMs: number | undefined, health: HealthState) {
    const k = this.#keys;
    const [memberKey, healthKey, loadKey] = [k.key('members', id), k.key('health', id), k.key('load', id)];
    const initialHealth = encode({ health, reason: 'registered' });
    const create = (lease?: string) => [
      op.put(memberKey, definition, lease),
      op.put(healthKey, initialHealth, lease),
      op.delete(loadKey),
      op.delete(k.key('removed', id)),
    ];
    if (ttlMs === undefined) {
      const r = await txn(this.#client, {
        compare: [cmp.exists(memberKey)],
        success: [op.putKeepLease(memberKey, definition)],
        failure: create(),
      });
      return Number(r.header.revision);
    }
    const ttlSec = Math.max(1, Math.ceil(ttlMs / 1000));
    const lease = await grantLease(this.#client, ttlSec);
    if (lease.ttlSec > ttlSec && !this.#ttlRaised) {
      this.#ttlRaised = true;
      this.#logger.info?.(
        { requestedSec: ttlSec, grantedSec: lease.ttlSec },
        'etcd: lease TTL raised to the server minimum',
      );
    }
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const now = await txn(this.#client, {
        compare: [],
        success: [op.get(memberKey), op.get(healthKey), op.get(loadKey)],
      });
      const [m, h, l] = [rangeResult(now, 0)[0], rangeResult(now, 1)[0], rangeResult(now, 2)[0]];
      const t: Txn = m
        ? {
            compare: [
              cmp.modified(memberKey, Number(m.mod_revision)),
              cmp.modified(healthKey, h ? Number(h.mod_revision) : 0),
              cmp.modified(loadKey, l ? Number(l.mod_revision) : 0),
            ],
            success: [
              op.put(memberKey, definition, lease.id),
              ...(h ? [op.put(healthKey, h.value, lease.id)] : []),
              ...(l ? [op.put(loadKey, l.value, lease.id)] : []),
            ],
          }
        : { compare: [cmp.created(memberKey, 0)], success: create(lease.id) };
      const r = await txn(this.#client, t);
      if (r.succeeded) return Number(r.header.revision);
    }
    await revokeLease(this.#client, lease.id).catch(() => {});
    throw this.#conflict(id);
  }

  /** Renews the member's lease, whichever instance granted it. */
  async keepAlive(id: string, timeoutMs: number): Promise<void> {
    const cached = this.#replica.get(id);
    if (cached && cached.lease !== '0' && (await keepAliveOnce(this.#client, cached.lease, timeoutMs)) > 0) {
      return;
    }
    const { guard } = await this.read(id);
    if (!guard) throw new NotFoundError('member', id);
    if (guard.lease === '0') return; // a member without lease never expires
    if ((await keepAliveOnce(this.#client, guard.lease, timeoutMs)) > 0) return;
    throw new NotFoundError('member', id); // its lease expired just now
  }

  /**
   * One transaction deletes the member's keys and writes a removal record (on a short lease)
   * that lets every watcher tell this removal from a lease expiry. Unknown ids: no change.
   */
  async deregister(id: string, reason: string, removalTtlSec: number): Promise<void> {
    const k = this.#keys;
    const memberKey = k.key('members', id);
    const removal = await grantLease(this.#client, removalTtlSec);
    const r = await txn(this.#client, {
      compare: [cmp.exists(memberKey)],
      success: [
        op.get(memberKey),
        op.delete(memberKey),
        op.delete(k.key('health', id)),
        op.delete(k.key('load', id)),
        op.put(k.key('removed', id), encode({ reason }), removal.id),
      ],
    });
    // The member's lease has no keys left (or the removal lease was not needed): free it.
    const lease = r.succeeded ? rangeResult(r, 0)[0]?.lease : removal.id;
    if (lease && lease !== '0') {
      await revokeLease(this.#client, lease).catch((error: unknown) => {
        this.#logger.debug?.({ err: error, id }, 'etcd: revoking a lease failed');
      });
    }
  }

  async report(id: string, load: string): Promise<void> {
    const loadKey = this.#keys.key('load', id);
    await this.#onMember(id, (m) => ({
      compare: this.#same(id, m),
      success: [op.put(loadKey, load, m.lease)],
    }));
  }

  /** Writes health unless etcd already has that state (then nothing changes, no event). */
  async setHealth(id: string, health: HealthState, reason: string): Promise<void> {
    const healthKey = this.#keys.key('health', id);
    const value = encode({ health, reason });
    await this.#onMember(id, (m) =>
      m.health === health
        ? undefined
        : {
            compare: [...this.#same(id, m), cmp.modified(healthKey, m.healthMod)],
            success: [op.put(healthKey, value, m.lease)],
          },
    );
  }
}
