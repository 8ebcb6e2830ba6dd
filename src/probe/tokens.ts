/**
 * Session tokens (the `session` field: 16 random bytes chosen by whoever assigns) from a pool
 * of CSPRNG bytes filled in bulk. `crypto.randomBytes(16)` per assignment costs a native call
 * and a Buffer each time and was the largest single cost of the assigner's JavaScript; one
 * `randomFillSync` of 64 KiB serves 4096 tokens. Every byte of the pool is handed out once.
 */
import { randomFillSync } from 'node:crypto';

export const SESSION_BYTES = 16;

/** Tokens per refill. */
const TOKENS_PER_FILL = 4096;

export class SessionTokens {
  readonly #pool = new Uint8Array(SESSION_BYTES * TOKENS_PER_FILL);
  #at = this.#pool.length;

  /** A new token: 16 bytes of its own (a copy, never a view of the pool). */
  next(): Uint8Array {
    if (this.#at === this.#pool.length) {
      randomFillSync(this.#pool);
      this.#at = 0;
    }
    const at = this.#at;
    this.#at = at + SESSION_BYTES;
    return this.#pool.slice(at, at + SESSION_BYTES);
  }
}
