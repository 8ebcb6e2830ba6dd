/**
 * Frames on a TCP stream: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
 */

export type FrameError = 'too-large' | 'malformed';

export interface DecodeResult {
  /** Decoded JSON values, in order. */
  readonly frames: unknown[];
  /** Set when the stream can no longer be trusted; frames before the error are still returned. */
  readonly error?: FrameError;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Encodes one message as a frame. */
export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Splits a byte stream into frames and parses their JSON; never throws. */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  #pending: Buffer = Buffer.alloc(0);
  #failed = false;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  push(chunk: Buffer): DecodeResult {
    const frames: unknown[] = [];
    if (this.#failed) return { frames };
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let offset = 0;
    let error: FrameError | undefined;
    while (this.#pending.length - offset >= 4) {
      const length = this.#pending.readUInt32BE(offset);
      if (length > this.#maxFrameBytes) {
        error = 'too-large';
        break;
      }
      if (this.#pending.length - offset - 4 < length) break;
      const body = this.#pending.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      try {
        frames.push(JSON.parse(utf8.decode(body)));
      } catch {
        error = 'malformed';
        break;
      }
    }
    if (error) {
      this.#failed = true;
      this.#pending = Buffer.alloc(0);
      return { frames, error };
    }
    this.#pending = offset === 0 ? this.#pending : Buffer.from(this.#pending.subarray(offset));
    return { frames };
  }
}
