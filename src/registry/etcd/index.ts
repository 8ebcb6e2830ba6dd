export { EtcdRegistry, type EtcdStats } from './etcd-registry.js';
export { ETCD_DEFAULTS, type EtcdLogger, type EtcdRegistryOptions } from './options.js';
