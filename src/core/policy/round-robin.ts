import { eligible, type Member } from '../model.js';
import { EligibleCache, type PickRequest, type Policy } from './policy.js';

/**
 * Round robin over the eligible members in a stable order: ascending member id (UTF-16 code
 * unit order, as `<` compares strings). Each pick returns the eligible member whose id follows
 * the previous pick's id, wrapping to the smallest id. Because the cursor is an id, not an
 * index, members joining, leaving or going down do not make the rotation skip or repeat the
 * others: over any stretch where the eligible set is fixed, every member is picked once per
 * cycle. The sorted order is cached per eligible set (`EligibleCache`); a pick is then O(n)
 * identity checks plus a binary search.
 */
export class RoundRobinPolicy implements Policy {
  readonly name = 'round-robin';
  #last: string | undefined;
  /** Only the canonical (id-sorted) order of the snapshot is needed; no derived value. */
  readonly #sorted = new EligibleCache(() => null);

  pick(request: PickRequest): Member | undefined {
    const members = eligible(request.members);
    if (members.length === 0) return undefined;
    const sorted = this.#sorted.get(members).members;
    const last = this.#last;
    let chosen = sorted[0]!;
    if (last !== undefined) {
      // First id greater than the last pick's, else wrap to the first.
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid]!.id > last) hi = mid;
        else lo = mid + 1;
      }
      if (lo < sorted.length) chosen = sorted[lo]!;
    }
    this.#last = chosen.id;
    return chosen;
  }
}
