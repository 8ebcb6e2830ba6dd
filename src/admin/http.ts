/**
 * Small node:http helpers for the admin server: JSON responses, the error envelope, bounded
 * body reading and strict JSON body parsing. No framework.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BadRequestError,
  ConfigInvalidError,
  ConfigUnreadableError,
  ForbiddenError,
  InternalError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  RegistryError,
  UnauthorizedError,
  UnavailableError,
  type UsherError,
} from '../errors.js';

/** The JSON body of every admin API error response. */
export interface ErrorBody {
  error: { code: string; message: string; issues?: readonly { path: string; message: string }[] };
}

const API_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
} as const;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...API_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...API_HEADERS,
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** HTTP status for an error; anything that is not a known UsherError is a 500. */
export function statusOf(error: unknown): number {
  if (error instanceof BadRequestError) return 400;
  if (error instanceof ConfigInvalidError) return 400;
  if (error instanceof ConfigUnreadableError) return 400;
  if (error instanceof UnauthorizedError) return 401;
  if (error instanceof ForbiddenError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof MethodNotAllowedError) return 405;
  if (error instanceof PayloadTooLargeError) return 413;
  if (error instanceof UnavailableError) return 503;
  if (error instanceof RegistryError) return 503;
  return 500;
}

/**
 * Writes `{ error: { code, message } }` with the status for the error. Unknown errors become
 * USHER_ERR_INTERNAL with a generic message (details go to the log, not to the client).
 */
export function sendError(res: ServerResponse, error: unknown, context: string): void {
  const status = statusOf(error);
  const known = status === 500 ? new InternalError(`internal error while handling ${context}`) : error;
  const e = known as UsherError;
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  if (error instanceof ConfigInvalidError) body.error.issues = error.issues;
  const headers: Record<string, string> = {};
  if (error instanceof MethodNotAllowedError) headers.Allow = error.allow.join(', ');
  if (error instanceof UnauthorizedError) headers['WWW-Authenticate'] = 'Bearer realm="usher-admin"';
  if (error instanceof PayloadTooLargeError) headers.Connection = 'close';
  if (res.headersSent) {
    // Too late for a status: cut the response so the client sees it failed.
    res.destroy();
    return;
  }
  sendJson(res, status, body, headers);
}

/**
 * Reads the whole request body, refusing more than `limit` bytes: a declared Content-Length
 * above the limit is refused before reading; a streamed body is cut as soon as it passes it
 * (the rest is discarded and the connection closed after the response).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new PayloadTooLargeError(limit, declared));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer): void => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        chunks.length = 0;
        reject(new PayloadTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, size));
    });
    req.once('error', (error) => {
      if (done) return;
      done = true;
      reject(new BadRequestError(`request body could not be read: ${error.message}`));
    });
    req.once('close', () => {
      if (done || req.complete) return;
      done = true;
      reject(new BadRequestError('request body aborted by the client'));
    });
  });
}

/**
 * Parses a JSON object body. An empty body is `undefined`; anything that is not valid JSON or
 * not an object is a BadRequestError. When `allowed` is given, any other top-level field is a
 * BadRequestError naming it.
 */
export function parseJsonObject(
  raw: Buffer,
  allowed?: readonly string[],
): Record<string, unknown> | undefined {
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`malformed JSON body: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new BadRequestError(
      `expected a JSON object body, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  if (allowed) {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key))
        throw new BadRequestError(
          `unknown field ${JSON.stringify(key)} in request body; allowed: ${allowed.length > 0 ? allowed.join(', ') : '(none)'}`,
        );
    }
  }
  return value as Record<string, unknown>;
}
