/**
 * The Usher client SDK (`usher/client`). Isomorphic: nothing here imports a Node-only module,
 * so the same code runs in Node and, bundled, in browsers (a test bundles it for the browser
 * platform to prove it). The mechanism SDKs (probe, list stream, redirect) are added here as
 * they land; today it carries the shared model and the selection policies a client uses to
 * choose its own server (seed 003, L3.4).
 */

export { fnv1a32, hashKey, hashToSpace, murmur3, seededRandom } from '../core/hash.js';
export type { HealthState, LoadMetric, LoadReport, Member, MemberView, Pool } from '../core/model.js';
export { eligible, emptyLoad, loadMetric, makeMember } from '../core/model.js';
export {
  createPolicy,
  isPolicyName,
  loadShareProbabilities,
  type PickRequest,
  POLICY_NAMES,
  type Policy,
  type PolicyName,
  priorityLoadProbabilities,
  type Random,
} from '../core/policy/index.js';
