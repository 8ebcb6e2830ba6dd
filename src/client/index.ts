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
export {
  type ClientFrame,
  type DataFrame,
  DEFAULT_STREAM_PATH,
  type ErrorFrame,
  encodeFrame,
  type GoawayFrame,
  type HeartbeatFrame,
  isTopic,
  MAX_TOPIC_LENGTH,
  type PingFrame,
  type PongFrame,
  parseClientFrame,
  parseServerFrame,
  type ServerFrame,
  STREAM_ERROR_CODES,
  STREAM_PROTOCOL_VERSION,
  type StreamErrorCode,
  type SubscribedFrame,
  type SubscribeFrame,
  type UnsubscribeFrame,
  validateClientFrame,
  validateServerFrame,
  type WelcomeFrame,
} from '../list/stream-protocol.js';
export {
  chooseServer,
  connectStream,
  type FetchLike,
  listMemberViews,
  parseListDocument,
  STREAM_POLICIES,
  StreamClient,
  type StreamClientEvents,
  type StreamClientOptions,
  type StreamClientState,
  type StreamClientStats,
  StreamConnectError,
  type StreamGap,
  type StreamHandler,
  type StreamListDocument,
  StreamListError,
  type StreamListServer,
  type StreamLost,
  type StreamLostReason,
  type StreamPolicyName,
  type StreamReconnected,
  type StreamRefetch,
  StreamRefusedError,
  type WebSocketConstructor,
  type WebSocketLike,
} from './stream.js';
