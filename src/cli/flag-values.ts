/** Values of command-line flags that several commands take the same way; a bad one is a usage error. */
import fs from 'node:fs';
import { WsviaError } from '../errors.js';
import { serverSecureContext } from '../serve/tls-identity.js';
import { UsageError } from './output.js';

/** A number greater than zero (seconds, counts); `undefined` when the flag is absent. */
export function positiveNumber(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} expects a positive number, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * The contents of the file a flag names (a CA, a certificate, a password file). One that cannot be read is a
 * configuration error (exit 2), one line naming the flag and the file.
 */
export function readFlagFile(path: string, flag: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new WsviaError('CONFIG_INVALID', `${flag} ${path}: cannot read the file (${code})`, {
      hop: 'config',
      cause: e,
    });
  }
}

/**
 * A flag's value parsed below the CLI (a port list, a host rule, a proxy URL): its error is a usage error said of
 * the flag, `--allow-ports: invalid port list entry "abc"`, so a config file's key is named the same way.
 */
export function parsedAs<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof WsviaError && e.code === 'INVALID_ARGUMENT')
      throw new UsageError(`${flag}: ${e.message}`);
    throw e;
  }
}

/** A server's certificate and key, PEM. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * `--tls-cert FILE --tls-key FILE`, the same in every server: both or neither, each readable, and usable together
 * (PEM, a key that matches), checked before anything listens. `certFlag`/`keyFlag` name them in messages (a config
 * file's keys, or an alias such as echo's `--cert`).
 */
export function readTlsFiles(
  cert: string | undefined,
  key: string | undefined,
  certFlag = '--tls-cert',
  keyFlag = '--tls-key',
): TlsFiles | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new UsageError(`${certFlag} and ${keyFlag} go together`);
  const files = { cert: readFlagFile(cert, certFlag), key: readFlagFile(key, keyFlag) };
  serverSecureContext(files, `${certFlag} ${cert}, ${keyFlag} ${key}`);
  return files;
}
