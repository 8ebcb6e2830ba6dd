/**
 * Every error Usher raises, one class per kind, each with a stable `code`.
 * Users match on `code`, never on the message text.
 */
export class UsherError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One problem found while validating operator input: where it is and what is wrong. */
export interface Issue {
  /** e.g. `pools.web.members[2].port` */
  path: string;
  /** e.g. `expected 1..65535, got 70000` */
  message: string;
}

/** A configuration file (or admin-submitted config) failed validation. Nothing was changed. */
export class ConfigInvalidError extends UsherError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[], source?: string) {
    const where = source ? `${source}: ` : '';
    super(
      'USHER_ERR_CONFIG_INVALID',
      `${where}invalid configuration\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`,
    );
    this.issues = issues;
  }
}

/** A configuration file could not be read or parsed as YAML. */
export class ConfigUnreadableError extends UsherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USHER_ERR_CONFIG_UNREADABLE', message, options);
  }
}

/** A command-line invocation was malformed (unknown flag, missing argument). */
export class UsageError extends UsherError {
  constructor(message: string) {
    super('USHER_ERR_USAGE', message);
  }
}

/** A member id, pool name or other entity was not found. */
export class NotFoundError extends UsherError {
  constructor(what: string, id: string) {
    super('USHER_ERR_NOT_FOUND', `${what} not found: ${id}`);
  }
}

/** A value given to a pure function broke its documented contract (a programming error). */
export class InvalidArgumentError extends UsherError {
  constructor(message: string) {
    super('USHER_ERR_INVALID_ARGUMENT', message);
  }
}

/** A registry operation failed (connection lost, conflict). */
export class RegistryError extends UsherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USHER_ERR_REGISTRY', message, options);
  }
}

/** A request to the admin API was malformed. */
export class BadRequestError extends UsherError {
  constructor(message: string) {
    super('USHER_ERR_BAD_REQUEST', message);
  }
}

/** An admin API request carried no bearer token, or a wrong one. */
export class UnauthorizedError extends UsherError {
  constructor(message: string) {
    super('USHER_ERR_UNAUTHORIZED', message);
  }
}

/** An admin API request is not allowed at all in this configuration (e.g. no admin token set). */
export class ForbiddenError extends UsherError {
  constructor(message: string) {
    super('USHER_ERR_FORBIDDEN', message);
  }
}

/** An admin API route exists but does not accept this HTTP method. */
export class MethodNotAllowedError extends UsherError {
  readonly allow: readonly string[];
  constructor(method: string, path: string, allow: readonly string[]) {
    super(
      'USHER_ERR_METHOD_NOT_ALLOWED',
      `method ${method} not allowed on ${path}; allowed: ${allow.join(', ')}`,
    );
    this.allow = allow;
  }
}

/** A request body exceeded the size limit. */
export class PayloadTooLargeError extends UsherError {
  constructor(limit: number, found?: number) {
    super(
      'USHER_ERR_PAYLOAD_TOO_LARGE',
      `request body too large: expected at most ${limit} bytes${found === undefined ? '' : `, got ${found}`}`,
    );
  }
}

/** A service is temporarily unable to serve the request (e.g. too many event-stream clients). */
export class UnavailableError extends UsherError {
  constructor(message: string) {
    super('USHER_ERR_UNAVAILABLE', message);
  }
}

/** An unexpected failure inside Usher (a bug); the message says which operation failed. */
export class InternalError extends UsherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USHER_ERR_INTERNAL', message, options);
  }
}

/** A bounded request queue (the high-water scheduler's) was full; the request was not queued. */
export class QueueFullError extends UsherError {
  readonly limit: number;
  constructor(limit: number) {
    super(
      'USHER_ERR_QUEUE_FULL',
      `request queue full: expected fewer than ${limit} waiting requests, got ${limit}`,
    );
    this.limit = limit;
  }
}

/** A queued request waited longer than its timeout; it was removed from the queue. */
export class QueueTimeoutError extends UsherError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('USHER_ERR_QUEUE_TIMEOUT', `request waited in the queue for more than ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** No member of the pool could take a request: none is up (or suspect), or all are down or draining. */
export class NoEligibleMemberError extends UsherError {
  constructor(message = 'no eligible member: every member is down or draining') {
    super('USHER_ERR_NO_ELIGIBLE_MEMBER', message);
  }
}

/** No answer to a probe-protocol request (probe, catalog, lobby) within the timeout, after every attempt. */
export class ProbeTimeoutError extends UsherError {
  readonly target: string;
  readonly timeoutMs: number;
  readonly attempts: number;
  constructor(target: string, timeoutMs: number, attempts: number) {
    super(
      'USHER_ERR_PROBE_TIMEOUT',
      `no answer from ${target} within ${timeoutMs} ms (${attempts} attempt${attempts === 1 ? '' : 's'})`,
    );
    this.target = target;
    this.timeoutMs = timeoutMs;
    this.attempts = attempts;
  }
}

/** The assigner or the member answered a probe-protocol request with ERROR. */
export class ProbeRejectedError extends UsherError {
  /** The protocol's error code: 1 unknown app, 2 no member available, 3 unknown session, 4 rate limited. */
  readonly errorCode: number;
  readonly target: string;
  constructor(target: string, errorCode: number, text: string) {
    const names: Record<number, string> = {
      1: 'unknown app',
      2: 'no member available',
      3: 'unknown session',
      4: 'rate limited',
    };
    const what = names[errorCode] ?? `error ${errorCode}`;
    super('USHER_ERR_PROBE_REJECTED', `${target} refused: ${what}${text ? ` (${text})` : ''}`);
    this.errorCode = errorCode;
    this.target = target;
  }
}

/** A probe client operation was called in a state that does not allow it (e.g. lobby while lost, after close). */
export class ProbeStateError extends UsherError {
  readonly state: string;
  constructor(operation: string, state: string) {
    super('USHER_ERR_PROBE_STATE', `${operation}: expected an assigned client, but it is ${state}`);
    this.state = state;
  }
}

/** A list document failed validation; `path` names the field (e.g. `servers[2].status`). */
export class ListDocumentInvalidError extends UsherError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('USHER_ERR_LIST_INVALID', `invalid list document: ${path || '(root)'}: ${message}`);
    this.path = path;
  }
}

/** A list URL could not be fetched, or did not return a valid list document. */
export class StreamListError extends UsherError {
  readonly url: string;
  constructor(url: string, problem: string, options?: { cause?: unknown }) {
    super('USHER_ERR_STREAM_LIST', `list ${url}: ${problem}`, options);
    this.url = url;
  }
}

/** A stream server could not be reached, or did not say welcome in time. */
export class StreamConnectError extends UsherError {
  readonly url: string;
  constructor(url: string, problem: string) {
    super('USHER_ERR_STREAM_CONNECT', `stream ${url}: ${problem}`);
    this.url = url;
  }
}

/** The stream server refused a frame (an `error` frame: too many subscriptions, forbidden topic, ...). */
export class StreamRefusedError extends UsherError {
  /** The server's error code (`too-many-subscriptions`, `forbidden-topic`, `malformed`, `too-large`). */
  readonly reason: string;
  readonly server: string;
  readonly topic: string | undefined;
  constructor(server: string, reason: string, message: string, topic?: string) {
    super(
      'USHER_ERR_STREAM_REFUSED',
      `stream server ${server} refused${topic === undefined ? '' : ` topic ${topic}`}: ${reason} (${message})`,
    );
    this.reason = reason;
    this.server = server;
    this.topic = topic;
  }
}
