/**
 * Config files (YAML) for the servers, validated with messages that name the file, the key path and the
 * problem: `gateway.yaml: routes[1].upstream: expected a URL string, got 42`. A key is the long flag's name
 * (`max-tunnels-per-client: 10` is `--max-tunnels-per-client 10`), read by {@link flagValuesFromConfig} for every
 * command; unknown keys are errors, so a typo is never silently ignored.
 */
import fs from 'node:fs';
import { parseDocument } from 'yaml';
import { WsviaError } from './errors.js';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

export class ConfigNode {
  readonly #value: unknown;
  readonly #path: string;
  readonly #source: string;

  constructor(value: unknown, source: string, path = '') {
    this.#value = value;
    this.#source = source;
    this.#path = path;
  }

  get raw(): unknown {
    return this.#value;
  }

  get path(): string {
    return this.#path || '(top level)';
  }

  /** An error about this node or one of its keys. */
  error(problem: string, key?: string | number): WsviaError {
    const where = key === undefined ? this.path : this.#child(key);
    return new WsviaError('CONFIG_INVALID', `${this.#source}: ${where}: ${problem}`, {
      hop: 'config',
      hint: 'fix the file; the running configuration, if any, is kept',
    });
  }

  #child(key: string | number): string {
    return typeof key === 'number' ? `${this.#path}[${key}]` : this.#path ? `${this.#path}.${key}` : key;
  }

  #map(): Record<string, unknown> {
    const v = this.#value;
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw this.error(`expected a mapping, got ${describe(v)}`);
    return v as Record<string, unknown>;
  }

  has(key: string): boolean {
    return this.#map()[key] !== undefined;
  }

  /** Fails on keys not in `known`. Call once per mapping. */
  onlyKeys(known: readonly string[]): this {
    for (const k of Object.keys(this.#map())) {
      if (known.includes(k)) continue;
      const kebab = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      if (known.includes(kebab)) throw this.error(`use ${kebab} (keys are the flags' names, kebab-case)`, k);
      throw this.error(`unknown key (expected one of: ${known.join(', ')})`, k);
    }
    return this;
  }

  get(key: string): ConfigNode {
    return new ConfigNode(this.#map()[key], this.#source, this.#child(key));
  }

  string(key: string): string | undefined {
    const v = this.#map()[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number')
      throw this.error(`expected a string, got ${describe(v)}`, key);
    return String(v);
  }

  number(key: string, bounds: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
    const v = this.#map()[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw this.error(`expected a number, got ${describe(v)}`, key);
    if (bounds.integer && !Number.isInteger(v)) throw this.error(`expected a whole number, got ${v}`, key);
    if (bounds.min !== undefined && v < bounds.min)
      throw this.error(`must be at least ${bounds.min}, got ${v}`, key);
    if (bounds.max !== undefined && v > bounds.max)
      throw this.error(`must be at most ${bounds.max}, got ${v}`, key);
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.#map()[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw this.error(`expected true or false, got ${describe(v)}`, key);
    return v;
  }

  /** A string or a list of strings, as a list. */
  strings(key: string): string[] | undefined {
    const v = this.#map()[key];
    if (v === undefined || v === null) return undefined;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x, i) => {
      if (typeof x !== 'string' && typeof x !== 'number')
        throw this.error(`expected a string, got ${describe(x)}`, `${key}[${i}]`);
      return String(x);
    });
  }

  /** The items of a list under `key`. */
  list(key: string): ConfigNode[] {
    const v = this.#map()[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.error(`expected a list, got ${describe(v)}`, key);
    return v.map((x, i) => new ConfigNode(x, this.#source, `${this.#child(key)}[${i}]`));
  }
}

/** Parses YAML text into a node; syntax errors name the line. */
export function parseConfig(text: string, source: string): ConfigNode {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line;
    throw new WsviaError(
      'CONFIG_INVALID',
      `${source}${line ? ` line ${line}` : ''}: ${first.message.split('\n')[0]}`,
      {
        hop: 'config',
        hint: 'the file is not valid YAML',
      },
    );
  }
  return new ConfigNode(doc.toJS(), source);
}

export function loadConfigFile(path: string): ConfigNode {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new WsviaError(
      'CONFIG_INVALID',
      `cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      {
        hop: 'config',
        cause: e,
      },
    );
  }
  return parseConfig(text, path);
}

/** A flag as a command's util.parseArgs table declares it (the shape of cli/commands.ts's FlagSpec). */
export interface FlagShape {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
}

/** What util.parseArgs returns for a command's flags, and what a config file reads as. */
export type FlagValues = Record<string, string | string[] | boolean | undefined>;

/** `maxTunnelsPerClient` -> `max-tunnels-per-client`. */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The flag an old or misplaced key meant (`maxTunnels`, or `tls: { listen }` for `tls-listen`), if any. */
function meantFlag(key: string, known: readonly string[]): string | undefined {
  const candidates = [kebab(key), key.replaceAll('_', '-'), key.toLowerCase()].flatMap((k) => [
    k,
    k.replace(/s$/, ''),
  ]);
  return candidates.find((k) => k !== key && known.includes(k));
}

function checkKeys(node: ConfigNode, known: readonly string[], others: readonly string[]): void {
  const map = node.raw;
  if (map === undefined || map === null) return;
  if (typeof map !== 'object' || Array.isArray(map))
    throw node.error(`expected a mapping, got ${describe(map)}`);
  for (const [key, value] of Object.entries(map as Record<string, unknown>)) {
    if (known.includes(key) || others.includes(key)) continue;
    const meant = meantFlag(key, known);
    if (meant) throw node.error(`use ${meant} (a key is the flag's name)`, key);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      // An old nested section (`limits: { maxConnections }`, `tls: { listen }`): name each key's new place.
      for (const sub of Object.keys(value)) {
        const flag =
          meantFlag(sub, known) ?? [sub, kebab(sub)].map((k) => `${key}-${k}`).find((k) => known.includes(k));
        if (flag) throw node.get(key).error(`use ${flag} at the top level (a key is the flag's name)`, sub);
      }
    }
    throw node.error(`unknown key (expected one of: ${[...known, ...others].join(', ')})`, key);
  }
}

/**
 * A config file's top-level keys as the flags they name, typed as util.parseArgs would return them: a boolean flag
 * wants true or false; a repeatable flag a value or a list; any other flag a value, or a list joined with commas
 * (`allow-ports: [443, 8443]` is `--allow-ports 443,8443`). `others` are keys the caller reads itself (the
 * gateway's `routes`); `config` and `help` are never keys. A camelCase key is an error naming its flag.
 */
export function flagValuesFromConfig(
  node: ConfigNode,
  options: Readonly<Record<string, FlagShape>>,
  others: readonly string[] = [],
): FlagValues {
  const known = Object.keys(options).filter((k) => k !== 'config' && k !== 'help');
  checkKeys(node, known, others);
  const values: FlagValues = {};
  for (const key of known) {
    const spec = options[key] as FlagShape;
    if (spec.type === 'boolean') values[key] = node.boolean(key);
    else if (spec.multiple) values[key] = node.strings(key);
    else values[key] = node.strings(key)?.join(',');
    if (values[key] === undefined) delete values[key];
  }
  return values;
}
