/** Printing for every command: errors with their code, hop, answer and hint; usage failures. */
import { exitCodeFor, EXIT_CODES, isWsviaError, type WsviaError } from '../errors.js';

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
    return exitCodeFor(e.code);
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(`${JSON.stringify({ event: 'error', code: null, message: msg })}\n`);
  process.stderr.write(`wsvia: ${msg}\n`);
  return EXIT_CODES.failure;
}

export class UsageError extends Error {}

/** Prints a usage failure with the command's help, and returns 2. */
export function reportUsage(e: unknown, usage: string): number {
  process.stderr.write(`wsvia: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
  return EXIT_CODES.usage;
}
