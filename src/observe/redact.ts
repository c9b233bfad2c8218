/**
 * Secrets out of everything printed: credentials in header values and URLs. Applied where a transcript is
 * made, so a trace, a log line or a doctor report cannot carry them.
 */

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/** The value with its secret part replaced: `Basic ***`, `Digest username="u", ...` keeps the user only. */
export function redactHeaderValue(name: string, value: string): string {
  const n = name.toLowerCase();
  if (!SECRET_HEADERS.has(n)) return value;
  if (n === 'cookie' || n === 'set-cookie') return '***';
  const scheme = /^\S+/.exec(value)?.[0] ?? '';
  if (scheme.toLowerCase() === 'digest') {
    const user = /username="((?:[^"\\]|\\.)*)"/i.exec(value)?.[1];
    return user === undefined ? 'Digest ***' : `Digest username="${user}", ***`;
  }
  return scheme === '' ? '***' : `${scheme} ***`;
}

export function redactHeaders(headers: readonly (readonly [string, string])[]): [string, string][] {
  return headers.map(([k, v]) => [k, redactHeaderValue(k, v)]);
}

/** Query parameters named like secrets (`?token=...`, `api_key=...`), as {@link redactUrl} treats them. */
const SECRET_QUERY_PARAM = /([?&])([^=&#\s]*(?:token|secret|password|key|auth)[^=&#\s]*)=([^&#\s]*)/gi;

/** A request-target with the values of secret-looking query parameters replaced by `***`. */
export function redactRequestTarget(target: string): string {
  return target.replace(SECRET_QUERY_PARAM, '$1$2=***');
}

/** Redacts header lines inside a head's text, and secret query parameters in its request line. */
export function redactHeadText(text: string): string {
  return text
    .split('\n')
    .map((line, i) => {
      // The request line carries the URL's query, where WebSocket APIs often put access tokens.
      if (i === 0 && / HTTP\/\d\.\d\r?$/.test(line)) return redactRequestTarget(line);
      const colon = line.indexOf(':');
      if (colon <= 0) return line;
      const name = line.slice(0, colon);
      if (!SECRET_HEADERS.has(name.toLowerCase())) return line;
      return `${name}: ${redactHeaderValue(name, line.slice(colon + 1).trim())}`;
    })
    .join('\n');
}

/** `scheme://user:***@host` for any URL text with a password; the URL's query keys named like secrets too. */
export function redactUrl(text: string): string {
  try {
    const u = new URL(text);
    if (u.password !== '') u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/token|secret|password|key|auth/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString().replace('%2A%2A%2A', '***');
  } catch {
    return text.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
  }
}
