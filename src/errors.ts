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
