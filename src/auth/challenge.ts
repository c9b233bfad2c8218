/**
 * `Proxy-Authenticate` / `WWW-Authenticate` challenges (RFC 9110 §11.3, §11.6.1). One field value may hold several
 * challenges, and their parameters are comma-separated too, so splitting on commas alone is wrong: a new challenge
 * begins where a bare token (the scheme) stands before a space or the end.
 */
import { splitOutsideQuotes, unquote } from '../protocol/headers.js';

export interface Challenge {
  /** Lowercased scheme: `basic`, `digest`, `ntlm`, `negotiate`, ... */
  readonly scheme: string;
  /** The scheme as the server spelled it, for display. */
  readonly name: string;
  /** Parameter names lowercased; quoted-string values unescaped. */
  readonly params: Readonly<Record<string, string>>;
  readonly token68?: string;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const PARAM = new RegExp(`^(${TOKEN})\\s*=\\s*("(?:[^"\\\\]|\\\\.)*"|${TOKEN})$`);
const SCHEME_START = new RegExp(`^(${TOKEN})(?:\\s+([\\s\\S]*))?$`);
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Parses every challenge in the given field values. Unparseable pieces are skipped, never thrown on. */
export function parseChallenges(values: readonly string[]): Challenge[] {
  const out: { scheme: string; name: string; params: Record<string, string>; token68?: string }[] = [];
  for (const value of values) {
    for (const rawItem of splitOutsideQuotes(value, ',')) {
      const item = rawItem.trim();
      if (item === '') continue;
      const param = PARAM.exec(item);
      const current = out[out.length - 1];
      if (param && current) {
        current.params[(param[1] as string).toLowerCase()] = unquote(param[2] as string);
        continue;
      }
      const m = SCHEME_START.exec(item);
      if (!m) continue;
      const name = m[1] as string;
      const rest = m[2]?.trim() ?? '';
      const challenge: (typeof out)[number] = { scheme: name.toLowerCase(), name, params: {} };
      if (rest !== '') {
        const p = PARAM.exec(rest);
        if (p) challenge.params[(p[1] as string).toLowerCase()] = unquote(p[2] as string);
        else if (TOKEN68.test(rest)) challenge.token68 = rest;
      }
      out.push(challenge);
    }
  }
  return out;
}

/** `Digest, Basic` as offered, for messages. */
export function describeSchemes(challenges: readonly Challenge[]): string {
  return [...new Set(challenges.map((c) => c.name))].join(', ');
}
