/** Values of command-line flags that several commands take the same way; a bad one is a usage error. */
import fs from 'node:fs';
import { UsageError } from './output.js';

/** A number greater than zero (seconds, counts); `undefined` when the flag is absent. */
export function positiveNumber(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} expects a positive number, got ${JSON.stringify(text)}`);
  return n;
}

/** The contents of the file a flag names (a CA, a certificate, a password file). */
export function readFlagFile(path: string, flag: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(e as Error).message}`);
  }
}
