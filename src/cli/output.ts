/** Printing for every command: errors with their code, hop, answer and hint; usage failures; the exit-code block. */
import { EXIT_CODE_MEANINGS, EXIT_CODES, exitCodeOf, isWsviaError, type WsviaError } from '../errors.js';

export function formatError(e: WsviaError): string {
  const lines = [`wsvia: ${e.summary} [${e.code}, hop ${e.hop}]`];
  const a = e.answer;
  if (a) {
    lines.push(`  answer: ${a.statusLine}`);
    for (const [k, v] of a.headers ?? []) lines.push(`  ${k}: ${v}`);
    if (a.bodyExcerpt) lines.push(`  body: ${a.bodyExcerpt}`);
  }
  if (e.hint) lines.push(`  hint: ${e.hint}`);
  return `${lines.join('\n')}\n`;
}

/** Prints an error from a command and returns its exit code. */
export function reportError(e: unknown, json = false): number {
  if (isWsviaError(e)) {
    if (json) process.stdout.write(`${JSON.stringify({ event: 'error', ...e.toJSON() })}\n`);
    process.stderr.write(formatError(e));
    return exitCodeOf(e);
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(`${JSON.stringify({ event: 'error', code: null, message: msg })}\n`);
  process.stderr.write(`wsvia: ${msg}\n`);
  return EXIT_CODES.failure;
}

export class UsageError extends Error {}

/** The option a util.parseArgs message names (`'--port <value>'`, `'-x, --proxy <value>'`, `'--bogus'`). */
function optionIn(message: string): string {
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const names = quoted.split(/[\s,]+/).filter((w) => w.startsWith('-'));
  return names[names.length - 1] ?? quoted;
}

/** util.parseArgs' errors in our words (its own mention `-- "--bogus"` and other parser advice). */
function usageMessage(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${optionIn(message)}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${optionIn(message)}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = optionIn(message);
      if (/does not take an argument/.test(message)) return `option ${option} takes no value`;
      if (/ambiguous/.test(message))
        return `option ${option} needs a value (one that starts with '-' goes as ${option}=VALUE)`;
      return `option ${option} needs a value`;
    }
    default:
      return message;
  }
}

/**
 * Prints a usage failure as curl does, two lines (`wsvia connect: unknown option --bogus`, `try 'wsvia connect
 * --help'`), and returns 2. A configuration error found while parsing (a file that cannot be read or used) is one
 * line with its code instead, exit 2 as well.
 */
export function reportUsage(e: unknown, command: string): number {
  // INVALID_ARGUMENT is a bad flag value found below the CLI (a listen address, a proxy URL): usage too.
  if (isWsviaError(e) && e.code !== 'INVALID_ARGUMENT') return reportError(e);
  const message = isWsviaError(e) ? e.message : usageMessage(e);
  process.stderr.write(`wsvia ${command}: ${message}\ntry 'wsvia ${command} --help'\n`);
  return EXIT_CODES.usage;
}

/** The `exit codes:` block of a command's `--help`, from the one table in errors.ts. */
export function exitCodesHelp(codes: readonly (keyof typeof EXIT_CODE_MEANINGS)[]): string {
  const width = Math.max(...codes.map((c) => String(c).length));
  return `exit codes:\n${codes.map((c) => `  ${String(c).padEnd(width)}  ${EXIT_CODE_MEANINGS[c]}`).join('\n')}\n`;
}

/** Every exit code: the clients' (connect, tunnel, doctor) block. */
export const ALL_EXIT_CODES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
/** What a server (proxy, gateway, bridge, echo) and the local commands exit with. */
export const SERVER_EXIT_CODES = [0, 1, 2] as const;
