/**
 * Secrets out of everything printed: credentials in header values and URLs. Applied where a transcript is
 * made, so a trace, a log line or a doctor report cannot carry them.
 */

const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token',
]);

/** The value with its secret part replaced: `Basic ***`, `Digest username="u", ...` keeps the user only. */
export function redactHeaderValue(name: string, value: string): string {
  const n = name.toLowerCase();
  if (!SECRET_HEADERS.has(n)) return value;
  if (n === 'cookie' || n === 'set-cookie' || n.startsWith('x-')) return '***';
  // `Scheme credentials`: the scheme may show. A value with no scheme (`Authorization: abc123`) is all secret.
  const scheme = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s+\S/.exec(value)?.[1] ?? '';
  if (scheme.toLowerCase() === 'digest') {
    const user = /username="((?:[^"\\]|\\.)*)"/i.exec(value)?.[1];
    return user === undefined ? 'Digest ***' : `Digest username="${user}", ***`;
  }
  return scheme === '' ? '***' : `${scheme} ***`;
}

export function redactHeaders(headers: readonly (readonly [string, string])[]): [string, string][] {
  return headers.map(([k, v]) => [k, redactHeaderValue(k, v)]);
}

/** Query parameters whose names say they carry a secret (`?token=`, `access_key=`, `auth=`...). */
const SECRET_PARAM = /token|secret|password|passwd|key|auth|sig/i;

/** Redacts a request-target: userinfo of an absolute-form URL, and the values of secret-looking query parameters. */
export function redactTarget(target: string): string {
  const q = target.indexOf('?');
  const base = target
    .slice(0, q < 0 ? target.length : q)
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@:]*):[^/]*@/i, '$1$2:***@');
  if (q < 0) return base;
  const query = target
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq > 0 && SECRET_PARAM.test(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=***` : pair;
    })
    .join('&');
  return `${base}?${query}`;
}

/** Redacts header lines inside a head's text, and secrets in the request line's target. */
export function redactHeadText(text: string): string {
  return text
    .split('\n')
    .map((line, i) => {
      if (i === 0) {
        const m = /^(\S+) (\S+)( HTTP\/\d\.\d\r?)$/.exec(line);
        return m ? `${m[1]} ${redactTarget(m[2] as string)}${m[3]}` : line;
      }
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
      if (SECRET_PARAM.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString().replace('%2A%2A%2A', '***');
  } catch {
    // Unparsed text may hold a raw `/` or `@` in the password: redact to the last `@`.
    return text.replace(/\/\/([^/@:]*):[\s\S]*@/, '//$1:***@');
  }
}
