/**
 * websockify's TokenFile format (`--token-plugin TokenFile --token-source FILE`): one `token: host:port` per line,
 * `#` starts a comment, blank lines ignored. The browser names its target with `?token=...`, so the page never
 * sees an address. Pure parsing here; {@link TokenFile} re-reads the file when it changes.
 */
import fs from 'node:fs/promises';
import { WsviaError } from '../errors.js';
import { parseAuthority, type Authority } from '../protocol/authority.js';

/** Lines longer than this are not token lines (the file is someone else's, or binary). */
const MAX_LINE = 4096;

/** Parses a token file's text into token -> target. A bad line is an error naming it (no silent skips). */
export function parseTokenFile(text: string, source = 'token file'): Map<string, Authority> {
  const out = new Map<string, Authority>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const fail = (why: string): never => {
      throw new WsviaError('CONFIG_INVALID', `${source} line ${i + 1}: ${why}`, {
        hop: 'config',
        hint: 'each line is "token: host:port" (websockify TokenFile format); # starts a comment',
      });
    };
    if (raw.length > MAX_LINE) fail(`line is ${raw.length} characters, limit is ${MAX_LINE}`);
    const hash = raw.indexOf('#');
    const line = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (line === '') return;
    const colon = line.indexOf(':');
    if (colon <= 0) fail('expected "token: host:port"');
    const token = line.slice(0, colon).trim();
    const target = line.slice(colon + 1).trim();
    if (!/^[\x21-\x7e]+$/.test(token)) fail('the token has spaces or control characters');
    let authority: Authority;
    try {
      authority = parseAuthority(target, source);
    } catch {
      return fail(`invalid target ${JSON.stringify(target.slice(0, 100))}`);
    }
    out.set(token, authority);
  });
  return out;
}

/** A token file that is read again whenever its modification time or size changes. */
export class TokenFile {
  readonly #path: string;
  #tokens = new Map<string, Authority>();
  #stamp = '';
  #loading: Promise<void> | undefined;

  constructor(path: string) {
    this.#path = path;
  }

  get path(): string {
    return this.#path;
  }

  /** Reads the file now; throws CONFIG_INVALID when it cannot be read or parsed (used at start-up). */
  async load(): Promise<void> {
    let st;
    let text;
    try {
      st = await fs.stat(this.#path);
      text = await fs.readFile(this.#path, 'utf8');
    } catch (e) {
      throw new WsviaError('CONFIG_INVALID', `cannot read the token file ${this.#path}`, {
        hop: 'config',
        hint: (e as NodeJS.ErrnoException).code ?? String(e),
        cause: e,
      });
    }
    this.#tokens = parseTokenFile(text, this.#path);
    this.#stamp = `${st.mtimeMs}:${st.size}`;
  }

  /**
   * The target for a token, after re-reading the file if it changed. A file that became unreadable or invalid
   * keeps the last good tokens (an editor's half-written save must not cut every session off).
   */
  async lookup(token: string): Promise<Authority | undefined> {
    try {
      const st = await fs.stat(this.#path);
      if (`${st.mtimeMs}:${st.size}` !== this.#stamp) {
        this.#loading ??= this.load().finally(() => (this.#loading = undefined));
        await this.#loading;
      }
    } catch {
      // Keep the last good tokens.
    }
    return this.#tokens.get(token);
  }
}
