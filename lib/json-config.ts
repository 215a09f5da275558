/**
 * JSON config files read against one schema: `train.json` and `pretrain.json` each state their
 * shape once, as a TypeBox schema (lib/train/config.ts, lib/pretrain/config.ts), and everything
 * else comes from it: the TypeScript type of the resolved config (`Static<schema>`), the defaults
 * (`default`), the field-path errors of {@link readConfig}, and the JSON Schema that editors check
 * a file against (`schemas/*.schema.json`, from {@link fileSchema}).
 *
 * The reader speaks the subset of JSON Schema the configs use: objects (unknown fields refused
 * with a "did you mean"), numbers and integers with bounds, strings (`format: "path"` strings are
 * resolved against the config file's directory), booleans, null, constants, arrays and tuples,
 * and `anyOf`. A field with a `default` may be left out; a list of paths may be given as one path.
 * Every problem is collected, so a file with three mistakes gets one error naming all three.
 *
 * @packageDocumentation
 */
import path from 'node:path';

import type { Static, TSchema } from '@sinclair/typebox';

/** One problem with a config. */
export interface ConfigIssue {
  /** Dotted path of the field, e.g. `optimizer.lr` or `corpus.train[1]`. */
  field: string;
  /** What is wrong, e.g. `must be a positive number, got -1`. */
  problem: string;
}

/** An invalid config file (`train.json`, `pretrain.json`): every problem found, each naming its field. */
export class TrainConfigError extends Error {
  constructor(
    readonly where: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    const lines = issues.map((i) => `field "${i.field}" ${i.problem}`);
    super(
      lines.length === 1
        ? `${where}: ${lines[0]}`
        : `${where}: ${lines.length} problems:\n  ${lines.join('\n  ')}`,
    );
    this.name = 'TrainConfigError';
  }
}

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a value is, in words, never the value itself, which may be huge or nested deep. */
export function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'number') return `a number (${value})`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`;
}

/** A value as an error message quotes it: JSON, cut at 60 characters. */
export function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[_\-\s]/g, '');
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest
// typo (`haed` for `head`).
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The field an unknown key most likely meant, as a full dotted path, or undefined.
 *
 * @param key the unknown key.
 * @param prefix path of the object holding it (`''` at the top).
 * @param known the keys that object accepts.
 * @param aliases names from other tools, normalised (lower case, no `_`/`-`), to field paths.
 */
export function suggestField(
  key: string,
  prefix: string,
  known: readonly string[],
  aliases: Readonly<Record<string, string>> = {},
): string | undefined {
  const join = (k: string): string => (prefix ? `${prefix}.${k}` : k);
  const n = normalizeName(key);
  const sameLevel = known.find((k) => normalizeName(k) === n);
  if (sameLevel) return join(sameLevel);
  // hasOwn: a key such as `constructor` must not find Object.prototype's members.
  const alias = Object.hasOwn(aliases, n) ? aliases[n] : undefined;
  if (alias && alias !== join(key)) return alias;
  // An abbreviation (`valid` for `validation`).
  const longer = n.length >= 3 ? known.find((k) => normalizeName(k).startsWith(n)) : undefined;
  if (longer) return join(longer);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(n, normalizeName(k));
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(n.length / 3));
  return best !== undefined && bestDistance <= allowed ? join(best) : undefined;
}

/** The JSON Schema keywords the reader understands (TypeBox emits them). */
interface Schema {
  type?: string;
  title?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema | Schema[];
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  format?: string;
  pattern?: string;
}

/** A string `format` of the configs: a file or directory, resolved against the config's directory. */
export const PATH_FORMAT = 'path';

function isPathList(s: Schema): boolean {
  return s.type === 'array' && !Array.isArray(s.items) && s.items?.format === PATH_FORMAT;
}

/** What a schema accepts, in words: the `title` when it has one, else read off its keywords. */
export function describe(schema: TSchema): string {
  const s = schema as Schema;
  if (s.title !== undefined) return s.title;
  if (s.anyOf) return s.anyOf.map((a) => describe(a as TSchema)).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  switch (s.type) {
    case 'integer':
    case 'number':
      return describeNumber(s);
    case 'string':
      return s.format === PATH_FORMAT ? 'a path' : 'a string';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'object': {
      const required = (s.required ?? []).filter((k) => s.properties?.[k]?.default === undefined);
      return required.length === 0
        ? 'an object'
        : `an object with ${required.map((k) => `"${k}"`).join(', ')}`;
    }
    case 'array': {
      if (isPathList(s)) return 'a path or a list of paths';
      if (Array.isArray(s.items)) {
        const each = s.items.map((a) => describe(a as TSchema));
        return each.every((d) => d === each[0])
          ? `a list of ${each.length}, each ${each[0]}`
          : `a list of ${each.join(', ')}`;
      }
      const list = s.minItems === 1 ? 'a non-empty list' : 'a list';
      return s.items ? `${list}, each ${describe(s.items as TSchema)}` : list;
    }
    default:
      return 'a value';
  }
}

function describeNumber(s: Schema): string {
  const kind = s.type === 'integer' ? 'an integer' : 'a number';
  const low = s.minimum ?? s.exclusiveMinimum;
  const high = s.maximum ?? s.exclusiveMaximum;
  if (low !== undefined && high !== undefined) {
    if (s.minimum !== undefined && s.maximum !== undefined) {
      return `${kind} from ${s.minimum} to ${s.maximum}`;
    }
    const open = s.minimum !== undefined ? '[' : '(';
    const close = s.maximum !== undefined ? ']' : ')';
    return `${kind} in ${open}${low}, ${high}${close}`;
  }
  if (s.exclusiveMinimum === 0)
    return s.type === 'integer' ? 'a positive integer' : 'a positive number';
  if (s.minimum !== undefined) return `${kind} ≥ ${s.minimum}`;
  if (s.exclusiveMinimum !== undefined) return `${kind} > ${s.exclusiveMinimum}`;
  if (s.maximum !== undefined) return `${kind} ≤ ${s.maximum}`;
  if (s.exclusiveMaximum !== undefined) return `${kind} < ${s.exclusiveMaximum}`;
  return kind;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** How {@link readConfig} reads a file. */
export interface ReadOptions {
  /** Directory `format: "path"` strings are resolved against. */
  baseDir: string;
  /** Names from other tools for "did you mean" (see {@link suggestField}). */
  aliases?: Readonly<Record<string, string>>;
  /**
   * How errors quote a wrong value: as JSON cut short (`value`, the default: a config file is
   * the user's own), or by its kind (`kind`: an HTTP body may be huge or nested deep).
   */
  quote?: 'value' | 'kind';
}

/** Collects issues while reading; the reader returns a stand-in after an error. */
class Reader {
  readonly issues: ConfigIssue[] = [];

  constructor(private readonly options: ReadOptions) {}

  private show(value: unknown): string {
    return this.options.quote === 'kind' ? kindOf(value) : show(value);
  }

  fail(field: string, problem: string): void {
    this.issues.push({ field, problem });
  }

  read(s: Schema, value: unknown, field: string): unknown {
    if (s.anyOf) return this.union(s, value, field);
    const wrong = (): unknown => {
      this.fail(field || '(root)', `must be ${describe(s as TSchema)}, got ${this.show(value)}`);
      return s.default;
    };
    if (s.const !== undefined) return value === s.const ? value : wrong();
    switch (s.type) {
      case 'object':
        return isObject(value) ? this.object(s, value, field) : wrong();
      case 'array':
        if (typeof value === 'string' && isPathList(s)) return this.read(s, [value], field);
        return Array.isArray(value) ? this.array(s, value, field) : wrong();
      case 'integer':
      case 'number':
        return typeof value === 'number' && Number.isFinite(value) && fitsNumber(s, value)
          ? value
          : wrong();
      case 'string':
        if (typeof value !== 'string') return wrong();
        if (s.format === PATH_FORMAT) return this.path(value, field);
        if (s.pattern !== undefined && !new RegExp(s.pattern).test(value)) return wrong();
        return value;
      case 'boolean':
        return typeof value === 'boolean' ? value : wrong();
      case 'null':
        return value === null ? value : wrong();
      default:
        return value;
    }
  }

  private path(value: string, field: string): string | undefined {
    if (value.trim() === '') {
      this.fail(field, `must be a non-empty path string, got ${this.show(value)}`);
      return undefined;
    }
    if (value.includes('\0')) {
      this.fail(field, 'must not contain a NUL character');
      return undefined;
    }
    return path.resolve(this.options.baseDir, value);
  }

  private object(s: Schema, value: Json, field: string): Json {
    const properties = s.properties ?? {};
    const known = Object.keys(properties);
    const join = (k: string): string => (field ? `${field}.${k}` : k);
    for (const key of Object.keys(value)) {
      // `$schema` names the JSON Schema an editor checks the file against.
      if (Object.hasOwn(properties, key) || (key === '$schema' && field === '')) continue;
      const suggestion = suggestField(key, field, known, this.options.aliases);
      this.fail(
        join(key),
        `is not a known field${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
      );
    }
    const out: Json = {};
    for (const [key, property] of Object.entries(properties)) {
      const given = value[key];
      if (given !== undefined) {
        out[key] = this.read(property, given, join(key));
      } else if (property.default !== undefined) {
        out[key] = this.read(property, structuredClone(property.default), join(key));
      } else if (s.required?.includes(key)) {
        this.fail(join(key), `is required: ${describe(property as TSchema)}`);
      }
    }
    return out;
  }

  private array(s: Schema, value: unknown[], field: string): unknown[] {
    if (s.minItems !== undefined && value.length < s.minItems) {
      this.fail(
        field,
        s.minItems === 1 && isPathList(s)
          ? 'must list at least one path'
          : `must be ${describe(s as TSchema)}, got ${this.show(value)}`,
      );
      return value;
    }
    if (Array.isArray(s.items)) {
      if (value.length !== s.items.length) {
        this.fail(field, `must be ${describe(s as TSchema)}, got ${this.show(value)}`);
        return value;
      }
      // A tuple is one value (Adam's betas): a bad member is reported as the whole.
      const items = s.items;
      const trial = new Reader(this.options);
      const read = value.map((item, i) => trial.read(items[i], item, `${field}[${i}]`));
      if (trial.issues.length > 0)
        this.fail(field, `must be ${describe(s as TSchema)}, got ${this.show(value)}`);
      return read;
    }
    if (s.maxItems !== undefined && value.length > s.maxItems) {
      this.fail(field, `must be ${describe(s as TSchema)}, got ${this.show(value)}`);
      return value;
    }
    const items = s.items;
    return items ? value.map((item, i) => this.read(items, item, `${field}[${i}]`)) : value;
  }

  // The first alternative that reads cleanly. An object (or array) that fits no alternative is
  // reported by the alternative of its own type that knows all its keys, so the issue names the
  // inner field (`schedule.warmupRatio`) rather than the whole union.
  private union(s: Schema, value: unknown, field: string): unknown {
    const alternatives = s.anyOf ?? [];
    const sameType = alternatives.filter(
      (a) =>
        a.const === undefined &&
        (a.type === jsonType(value) || (isPathList(a) && typeof value === 'string')),
    );
    const fitting = isObject(value)
      ? sameType.filter((a) =>
          Object.keys(value).every((k) => Object.hasOwn(a.properties ?? {}, k)),
        )
      : sameType;
    const candidates = fitting.length > 0 ? fitting : sameType;
    for (const alternative of alternatives) {
      const trial = new Reader(this.options);
      const read = trial.read(alternative, value, field);
      if (trial.issues.length === 0) return read;
    }
    const structured = isObject(value) || Array.isArray(value);
    if (structured && candidates.length > 0) return this.read(candidates[0], value, field);
    this.fail(field || '(root)', `must be ${describe(s as TSchema)}, got ${this.show(value)}`);
    return s.default;
  }
}

function fitsNumber(s: Schema, value: number): boolean {
  return (
    (s.type !== 'integer' || Number.isInteger(value)) &&
    (s.minimum === undefined || value >= s.minimum) &&
    (s.maximum === undefined || value <= s.maximum) &&
    (s.exclusiveMinimum === undefined || value > s.exclusiveMinimum) &&
    (s.exclusiveMaximum === undefined || value < s.exclusiveMaximum)
  );
}

/** What {@link readConfig} found: the value with defaults filled in and paths resolved. */
export interface ReadResult<T> {
  value: T;
  issues: ConfigIssue[];
  /**
   * Whether the fields read without a problem, inside them or around them (an invalid parent
   * leaves its members unread): cross-field checks use it.
   */
  valid(...fields: string[]): boolean;
}

// Whether field path `inner` is `outer` or lies inside it (`a.b` and `a[0]` lie inside `a`).
function within(inner: string, outer: string): boolean {
  return (
    inner === outer ||
    outer === '(root)' ||
    inner.startsWith(`${outer}.`) ||
    inner.startsWith(`${outer}[`)
  );
}

/**
 * Reads a parsed JSON value against a schema: defaults filled in, paths resolved, every problem
 * collected with its field path. The value is only trustworthy where {@link ReadResult.valid}
 * says so; callers add their cross-field checks to `issues` and throw if any.
 */
export function readConfig<S extends TSchema>(
  schema: S,
  raw: unknown,
  options: ReadOptions,
): ReadResult<Static<S>> {
  const reader = new Reader(options);
  const value = reader.read(schema as Schema, raw, '') as Static<S>;
  const issues = reader.issues;
  return {
    value,
    issues,
    valid: (...fields) =>
      !issues.some((i) => fields.some((f) => within(i.field, f) || within(f, i.field))),
  };
}

/**
 * The JSON Schema of the file a schema reads, for editors (`$schema` in the file): a field with
 * a default, or named in `optional` (a default found at run time), may be left out; a list of
 * paths may be one path; `$schema` itself is allowed at the top.
 */
export function fileSchema(
  schema: TSchema,
  meta: { title: string; optional?: readonly string[] },
): Json {
  const optional = new Set(meta.optional ?? []);
  const convert = (s: Schema, at: string): Json => {
    const out: Json = { ...s };
    if (isPathList(s)) {
      const { description, default: fallback, ...list } = s;
      return { description, default: fallback, anyOf: [s.items, list] };
    }
    if (s.type === 'object') out.additionalProperties = false;
    if (s.anyOf) out.anyOf = s.anyOf.map((a) => convert(a, at));
    if (s.properties) {
      const properties: Json = {};
      for (const [k, p] of Object.entries(s.properties)) {
        properties[k] = convert(p, at ? `${at}.${k}` : k);
      }
      out.properties = properties;
      const required = (s.required ?? []).filter(
        (k) => s.properties?.[k]?.default === undefined && !optional.has(at ? `${at}.${k}` : k),
      );
      if (required.length > 0) out.required = required;
      else delete out.required;
    }
    if (s.items && !Array.isArray(s.items)) out.items = convert(s.items, at + '[]');
    return out;
  };
  const body = convert(JSON.parse(JSON.stringify(schema)) as Schema, '');
  const properties = body.properties as Json;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: meta.title,
    ...body,
    properties: {
      $schema: { type: 'string', description: 'The JSON Schema this file follows.' },
      ...properties,
    },
  };
}
