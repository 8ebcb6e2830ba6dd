import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigInvalidError, ConfigUnreadableError, type Issue } from '../errors.js';
import { type Config, configSchema } from './schema.js';

/** `['pools','web','members',2,'port']` -> `pools.web.members[2].port` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return `${typeof v} ${String(v)}`;
}

function toIssues(error: z.core.$ZodError): Issue[] {
  const issues: Issue[] = [];
  for (const iss of error.issues) {
    const raw = iss as z.core.$ZodIssue & { input?: unknown };
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys)
        issues.push({ path: formatPath([...iss.path, key]), message: 'unknown key' });
      continue;
    }
    let message = iss.message;
    if (iss.code === 'invalid_type') message = `expected ${iss.expected}, got ${describeValue(raw.input)}`;
    else if (iss.code === 'invalid_value')
      message = `expected one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(raw.input)}`;
    else if (iss.code === 'invalid_union') message = `${message}, got ${describeValue(raw.input)}`;
    issues.push({ path: formatPath(iss.path), message });
  }
  return issues;
}

/** Validates an already-parsed object. Throws ConfigInvalidError; returns a deep-frozen Config. */
export function validateConfig(input: unknown, source?: string): Config {
  const result = configSchema.safeParse(input ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigInvalidError(toIssues(result.error), source);
  return deepFreeze(result.data);
}

/** Parses YAML text and validates it. */
export function parseConfig(text: string, source = 'config'): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ConfigUnreadableError(`${source}: not valid YAML: ${e.message}`);
  }
  return validateConfig(doc.toJS({ maxAliasCount: 100 }), source);
}

/** Reads, parses and validates a config file. */
export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigUnreadableError(`${path}: cannot read config file (${code ?? String(error)})`, {
      cause: error,
    });
  }
  return parseConfig(text, path);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
