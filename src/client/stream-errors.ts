/**
 * Errors of the stream client (seed 003, L3.5/L3.6), each with a stable `code`; they live with
 * every other error in src/errors.ts. They are emitted as `error` events (the client keeps
 * trying), never thrown from network input.
 */
export { StreamConnectError, StreamListError, StreamRefusedError } from '../errors.js';
