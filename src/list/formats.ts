/**
 * The four renderings of a list document (json, text, xml, js) and content negotiation.
 * Pure (no I/O); the grammar of each format is in docs/protocols/list.md.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ListDocument, ListEntry } from './entry.js';

export const LIST_FORMATS = ['json', 'text', 'xml', 'js'] as const;

export type ListFormat = (typeof LIST_FORMATS)[number];

/** The Content-Type each format is served with. */
export const LIST_CONTENT_TYPES: Readonly<Record<ListFormat, string>> = {
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

/** Media types (lower case) that select each format in an Accept header. */
const MEDIA_TYPES: Readonly<Record<ListFormat, readonly string[]>> = {
  json: ['application/json'],
  text: ['text/plain'],
  xml: ['application/xml', 'text/xml'],
  js: ['text/javascript', 'application/javascript'],
};

/** The global the `js` format assigns when no callback is asked for. */
export const JS_GLOBAL = 'usherList';

const CALLBACK_RE = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
export const CALLBACK_MAX_LENGTH = 64;

/** Whether `name` may be used as the js format's callback: a dotted identifier path of at most 64 characters. */
export function isValidCallback(name: string): boolean {
  return name.length <= CALLBACK_MAX_LENGTH && CALLBACK_RE.test(name);
}

// ---- text ----

export const TEXT_COLUMNS = ['id', 'status', 'users', 'capacity', 'group', 'url'] as const;

/** Backslash, tab, LF and CR become `\\`, `\t`, `\n`, `\r`, so a value never splits a line or a column. */
export function escapeTextField(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}

function textUrl(e: ListEntry): string {
  if (e.url === undefined) return '-';
  return e.url === '-' ? '\\-' : escapeTextField(e.url);
}

function renderText(doc: ListDocument): string {
  const header = [
    '#usher-list',
    `version=${doc.version}`,
    `pool=${escapeTextField(doc.pool)}`,
    `revision=${doc.revision}`,
    `generatedAt=${doc.generatedAt}`,
    `columns=${TEXT_COLUMNS.join(',')}`,
  ].join('\t');
  const lines = [header];
  for (const e of doc.servers) {
    lines.push(
      [
        escapeTextField(e.id),
        e.status,
        String(e.users),
        String(e.capacity),
        String(e.group),
        textUrl(e),
      ].join('\t'),
    );
  }
  return `${lines.join('\n')}\n`;
}

// ---- xml ----

/** Whether a UTF-16 code unit sequence position holds a character XML 1.0 can carry. */
function xmlChar(s: string, i: number): { ok: boolean; width: number } {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = s.charCodeAt(i + 1);
    return next >= 0xdc00 && next <= 0xdfff ? { ok: true, width: 2 } : { ok: false, width: 1 };
  }
  if (c >= 0xdc00 && c <= 0xdfff) return { ok: false, width: 1 };
  if (c < 0x20) return { ok: c === 0x9 || c === 0xa || c === 0xd, width: 1 };
  return { ok: c !== 0xfffe && c !== 0xffff, width: 1 };
}

const XML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/**
 * Escapes an attribute value: markup characters and quotes as entities, tab/LF/CR as character
 * references (a parser would otherwise normalise them to spaces), and characters XML 1.0 cannot
 * carry at all (other C0 controls, lone surrogates, U+FFFE, U+FFFF) as U+FFFD.
 */
export function escapeXmlAttribute(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; ) {
    const { ok, width } = xmlChar(value, i);
    const ch = value.slice(i, i + width);
    out += ok ? (XML_ESCAPES[ch] ?? ch) : '\uFFFD';
    i += width;
  }
  return out;
}

function attributes(pairs: readonly (readonly [string, string | number | undefined])[]): string {
  return pairs
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXmlAttribute(String(v))}"`)
    .join('');
}

function renderXml(doc: ListDocument): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<servers${attributes([
      ['version', doc.version],
      ['pool', doc.pool],
      ['revision', doc.revision],
      ['generatedAt', doc.generatedAt],
    ])}>`,
  ];
  for (const e of doc.servers) {
    const attrs = attributes([
      ['id', e.id],
      ['status', e.status],
      ['users', e.users],
      ['capacity', e.capacity],
      ['group', e.group],
      ['weight', e.weight],
      ['site', e.site],
      ['address', e.address],
      ['url', e.url],
    ]);
    const labels = Object.entries(e.labels);
    if (labels.length === 0) {
      lines.push(`  <server${attrs}/>`);
      continue;
    }
    lines.push(`  <server${attrs}>`);
    for (const [name, value] of labels)
      lines.push(
        `    <label${attributes([
          ['name', name],
          ['value', value],
        ])}/>`,
      );
    lines.push('  </server>');
  }
  lines.push('</servers>');
  return `${lines.join('\n')}\n`;
}

// ---- js ----

/**
 * JSON made safe to embed in an inline `<script>` and to run as JavaScript: every `<` (so no
 * `</script>` or `<!--`), U+2028 and U+2029 become `\uXXXX` escapes, which JSON strings allow.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function renderJs(doc: ListDocument, callback: string | undefined): string {
  if (callback === undefined) return `var ${JS_GLOBAL} = ${scriptSafeJson(doc)};\n`;
  if (!isValidCallback(callback))
    throw new InvalidArgumentError(
      `callback: expected a dotted JavaScript identifier of at most ${CALLBACK_MAX_LENGTH} characters, got ${JSON.stringify(callback.slice(0, 80))}`,
    );
  return `${callback}(${scriptSafeJson(doc)});\n`;
}

/**
 * Renders a document. `callback` applies to `js` only: `callback({...});` instead of
 * `var usherList = {...};`; an invalid callback throws InvalidArgumentError (check with isValidCallback).
 */
export function renderList(doc: ListDocument, format: ListFormat, callback?: string): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(doc)}\n`;
    case 'text':
      return renderText(doc);
    case 'xml':
      return renderXml(doc);
    case 'js':
      return renderJs(doc, callback);
  }
}

// ---- negotiation ----

export type Negotiation =
  | { readonly ok: true; readonly format: ListFormat }
  | { readonly ok: false; readonly status: 400 | 406; readonly message: string };

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly q: number;
  readonly index: number;
}

/** Parses an Accept header; ranges that are not `type/subtype` (bare `*` counts as `*\/*`) or carry a non-numeric q are skipped. */
function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  header.split(',').forEach((part, index) => {
    const [media = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const [type, subtype] = media === '*' ? ['*', '*'] : media.split('/');
    if (!type || !subtype) return;
    let q = 1;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq < 0 || p.slice(0, eq).trim() !== 'q') continue;
      q = Number(p.slice(eq + 1).trim());
    }
    if (!Number.isFinite(q)) return;
    ranges.push({ type, subtype, q: Math.min(Math.max(q, 0), 1), index });
  });
  return ranges;
}

interface Score {
  readonly q: number;
  readonly specificity: number;
  readonly index: number;
}

/** The most specific range matching `mediaType` decides its q (RFC 9110 §12.5.1). */
function scoreOf(mediaType: string, ranges: readonly MediaRange[]): Score | undefined {
  const [type, subtype] = mediaType.split('/');
  let best: Score | undefined;
  for (const r of ranges) {
    let specificity = 0;
    if (r.type === type && r.subtype === subtype) specificity = 3;
    else if (r.type === type && r.subtype === '*') specificity = 2;
    else if (r.type === '*' && r.subtype === '*') specificity = 1;
    else continue;
    if (best === undefined || specificity > best.specificity) best = { q: r.q, specificity, index: r.index };
  }
  return best;
}

function better(a: Score, b: Score | undefined): boolean {
  if (b === undefined) return true;
  if (a.q !== b.q) return a.q > b.q;
  if (a.specificity !== b.specificity) return a.specificity > b.specificity;
  return a.index < b.index;
}

/**
 * Chooses the format. A `format` parameter (json, text, xml, js; case-insensitive) wins; any other
 * value is a 400. Otherwise the Accept header with q-values: the highest q wins, then the more
 * specific match, then the range listed first, then the order json, text, xml, js (so `*\/*` is
 * json). No header (or an empty one) is json; a header that accepts none of them is a 406.
 */
export function negotiate(
  acceptHeader: string | undefined,
  formatParam: string | null | undefined,
): Negotiation {
  if (formatParam !== undefined && formatParam !== null) {
    const f = formatParam.toLowerCase();
    if ((LIST_FORMATS as readonly string[]).includes(f)) return { ok: true, format: f as ListFormat };
    return {
      ok: false,
      status: 400,
      message: `format: expected one of ${LIST_FORMATS.join(', ')}, got ${JSON.stringify(formatParam.slice(0, 40))}`,
    };
  }
  if (acceptHeader === undefined || acceptHeader.trim() === '') return { ok: true, format: 'json' };
  const ranges = parseAccept(acceptHeader);
  let chosen: ListFormat | undefined;
  let chosenScore: Score | undefined;
  for (const format of LIST_FORMATS) {
    for (const media of MEDIA_TYPES[format]) {
      const s = scoreOf(media, ranges);
      if (s === undefined || s.q <= 0) continue;
      if (better(s, chosenScore)) {
        chosen = format;
        chosenScore = s;
      }
    }
  }
  if (chosen !== undefined) return { ok: true, format: chosen };
  const offered = LIST_FORMATS.flatMap((f) => MEDIA_TYPES[f]).join(', ');
  return {
    ok: false,
    status: 406,
    message: `Accept: none of the offered types is acceptable; offered ${offered} (or ?format=${LIST_FORMATS.join('|')})`,
  };
}
