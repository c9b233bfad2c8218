/**
 * `--config FILE` for every server command, in one place: the file's keys are the flags' names (config.ts), flags
 * given on the command line win (a list given replaces the file's list), and a value the command's own parser
 * rejects is reported against the file and its key (`proxy.yaml: max-tunnels: expects a whole number ...`).
 */
import { flagValuesFromConfig, loadConfigFile, type FlagShape, type FlagValues } from '../config.js';
import { WsviaError } from '../errors.js';
import { UsageError } from './output.js';

/** The values the command parses: the file's (if `--config` is given) under the flags'. */
export interface MergedFlags {
  readonly values: FlagValues;
  /** Which keys came from the file, and the file's path. */
  readonly fromFile: ReadonlySet<string>;
  readonly file: string | undefined;
}

/**
 * Flags that say one thing two ways (`--listen` and `--host`/`--port`): a flag given from one group hides the file's
 * keys of the others, so the command line wins over the file whichever spelling each uses.
 */
export type AliasGroups = readonly (readonly (readonly string[])[])[];

/** The file's keys a flag given hides: the other spellings of what that flag says. */
function hiddenByFlags(given: FlagValues, aliases: AliasGroups): string[] {
  return aliases.flatMap((spellings) => {
    const used = spellings.find((keys) => keys.some((k) => k in given));
    return used === undefined ? [] : spellings.filter((keys) => keys !== used).flat();
  });
}

export function mergeConfigFile(
  flags: Readonly<Record<string, unknown>>,
  options: Readonly<Record<string, FlagShape>>,
  aliases: AliasGroups = [],
): MergedFlags {
  const file = typeof flags['config'] === 'string' ? flags['config'] : undefined;
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as FlagValues;
  if (file === undefined) return { values: given, fromFile: new Set(), file };
  const fromConfig = flagValuesFromConfig(loadConfigFile(file), options);
  for (const k of hiddenByFlags(given, aliases)) delete fromConfig[k];
  const fromFile = new Set(Object.keys(fromConfig).filter((k) => !(k in given)));
  return { values: { ...fromConfig, ...given }, fromFile, file };
}

/**
 * Runs the command's parser over merged values. A usage error about a value that came from the file (its message
 * names `--KEY` first) becomes a configuration error naming the file and the key.
 */
export function parseMerged<T>(merged: MergedFlags, parse: (values: FlagValues) => T): T {
  try {
    return parse(merged.values);
  } catch (e) {
    const text = e instanceof UsageError ? e.message : e instanceof WsviaError ? e.summary : undefined;
    if (text === undefined || merged.file === undefined) throw e;
    const flag = /--([a-z0-9-]+)/.exec(text)?.[1];
    if (flag === undefined || !merged.fromFile.has(flag)) throw e;
    const problem = text.replace(new RegExp(`^--${flag}:? ?`), '').replaceAll(/--([a-z0-9-]+)/g, '$1');
    throw new WsviaError('CONFIG_INVALID', `${merged.file}: ${flag}: ${problem}`, { hop: 'config' });
  }
}
