export type { MeshNodeChange, MeshNodeView } from './membership.js';
export { type MeshNodeListener, MeshRegistry } from './mesh-registry.js';
export type { NodeState } from './messages.js';
export { MESH_DEFAULTS, type MeshLogger, type MeshOptions } from './options.js';
export type { DropReason, MeshStats } from './stats.js';
