/**
 * Prints the configuration reference (a Markdown table) generated from the one schema, and
 * with `--write` replaces the block between the markers in README.md.
 * Run: `node --import tsx scripts/config-reference.ts [--write]`.
 */
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';
import { replaceReadmeBlock } from './readme-block.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema | JsonSchema[];
  prefixItems?: JsonSchema[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
  required?: string[];
}

const rows: string[] = [];

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  let t = Array.isArray(s.type) ? s.type.join('/') : (s.type ?? 'any');
  if (t === 'integer' && s.minimum !== undefined && s.maximum !== undefined)
    t = `integer ${s.minimum}..${s.maximum}`;
  if (t === 'number' && s.exclusiveMinimum !== undefined) t = `number > ${s.exclusiveMinimum}`;
  if (t === 'array' && s.prefixItems) t = `[${s.prefixItems.map(typeOf).join(', ')}]`;
  else if (t === 'array' && s.items && !Array.isArray(s.items) && s.items.type !== 'object')
    t = `list of ${typeOf(s.items)}`;
  return t;
}

function walk(path: string, s: JsonSchema): void {
  const isObject = s.type === 'object';
  const def = s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``;
  if (path && !(isObject && s.properties && Object.keys(s.properties).length > 0 && !s.description)) {
    rows.push(
      `| \`${path}\` | ${isObject ? 'section' : typeOf(s)} | ${def} | ${(s.description ?? '').replace(/\|/g, '\\|')} |`,
    );
  }
  if (s.properties) for (const [k, v] of Object.entries(s.properties)) walk(path ? `${path}.${k}` : k, v);
  if (
    s.additionalProperties &&
    typeof s.additionalProperties === 'object' &&
    s.additionalProperties.properties
  )
    walk(`${path}.<name>`, s.additionalProperties);
  if (s.items && !Array.isArray(s.items) && s.items.properties) walk(`${path}[]`, s.items);
}

const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
walk('', schema);
const table = ['| key | type | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');

if (process.argv.includes('--write')) replaceReadmeBlock('config-reference', table);
else console.log(table);
