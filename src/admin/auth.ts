/**
 * Bearer-token check for admin mutations. The token comes from the environment variable
 * USHER_ADMIN_TOKEN (read by the caller, never from the config file). Comparison is in
 * constant time: both sides are hashed to equal-length SHA-256 digests and compared with
 * crypto.timingSafeEqual, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, UnauthorizedError } from '../errors.js';

export const ADMIN_TOKEN_ENV = 'USHER_ADMIN_TOKEN';

export type TokenCheck = (authorization: string | undefined) => void;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Returns a check that throws ForbiddenError when no token is configured (mutations are
 * disabled; an empty string counts as none), and UnauthorizedError when the Authorization
 * header is missing, not `Bearer <token>`, or carries the wrong token.
 */
export function bearerCheck(token: string | undefined): TokenCheck {
  const expected = token ? digest(token) : undefined;
  return (authorization) => {
    if (!expected)
      throw new ForbiddenError(
        `admin mutations are disabled: set the ${ADMIN_TOKEN_ENV} environment variable to enable them`,
      );
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!match) throw new UnauthorizedError('missing bearer token: send "Authorization: Bearer <token>"');
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new UnauthorizedError('invalid bearer token');
  };
}
