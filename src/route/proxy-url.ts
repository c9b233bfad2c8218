/**
 * Proxy URLs, as curl reads them: `[scheme://][user[:pass]@]host[:port]`. Credentials are percent-decoded
 * (so `p%40ss` is `p@ss`, and `:` may appear in the password); they are kept out of every printed form.
 */
import { Credentials } from '../auth/credentials.js';
import { invalidArgument } from '../errors.js';
import { formatHost, unbracket } from '../protocol/authority.js';

/** The proxy URL schemes wsvia dials, as curl names them (socks5h: names resolved by the proxy). */
export const PROXY_SCHEMES = ['http', 'https', 'socks4', 'socks4a', 'socks5', 'socks5h'] as const;
/** One of {@link PROXY_SCHEMES}. */
export type ProxyScheme = (typeof PROXY_SCHEMES)[number];

/** curl's defaults: 1080 for every scheme but https, which is 443. */
const DEFAULT_PORTS: Record<ProxyScheme, number> = {
  http: 1080,
  https: 443,
  socks4: 1080,
  socks4a: 1080,
  socks5: 1080,
  socks5h: 1080,
};

/** A parsed proxy URL: scheme, host, port, credentials (never printed) and a display form safe to log. */
export interface ProxyUrl {
  readonly scheme: ProxyScheme;
  /** Host name or address, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  readonly credentials: Credentials | undefined;
  /** `http://user:***@host:port`: safe to print. */
  readonly display: string;
}

export function isProxyScheme(s: string): s is ProxyScheme {
  return (PROXY_SCHEMES as readonly string[]).includes(s);
}

/** Parses a proxy URL. A missing scheme means http (curl). Throws INVALID_ARGUMENT naming what is wrong. */
export function parseProxyUrl(text: string): ProxyUrl {
  const trimmed = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalidArgument(
      `invalid proxy URL ${JSON.stringify(redactUrlText(trimmed))}`,
      'expected [scheme://][user:pass@]host[:port]',
    );
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (!isProxyScheme(scheme)) {
    throw invalidArgument(`unsupported proxy scheme "${scheme}"`, `use one of ${PROXY_SCHEMES.join(', ')}`);
  }
  if (url.hostname === '')
    throw invalidArgument(`proxy URL ${JSON.stringify(redactUrlText(trimmed))} has no host`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw invalidArgument(
      `proxy URL ${JSON.stringify(redactUrlText(trimmed))} has a path or query`,
      'a proxy URL is scheme://host:port',
    );
  }
  const host = unbracket(url.hostname);
  // The URL parser drops a port equal to its scheme's default (`http://proxy:80` has port ''), but curl's default
  // for a proxy is 1080, not 80: read an explicit port from the text before falling back.
  const port = url.port !== '' ? Number(url.port) : (explicitPort(withScheme) ?? DEFAULT_PORTS[scheme]);
  let credentials: Credentials | undefined;
  if (url.username !== '' || url.password !== '') {
    try {
      credentials = new Credentials(decodeURIComponent(url.username), decodeURIComponent(url.password));
    } catch {
      throw invalidArgument('proxy URL credentials are not valid percent-encoding');
    }
  }
  return { scheme, host, port, credentials, display: displayProxy(scheme, host, port, credentials) };
}

/** The port written in `scheme://[userinfo@]host:port[/...]`, if any. */
function explicitPort(withScheme: string): number | undefined {
  const rest = withScheme.slice(withScheme.indexOf('//') + 2);
  const authority = rest.split(/[/?#\\]/, 1)[0] ?? '';
  const m = /:(\d+)$/.exec(authority.slice(authority.lastIndexOf('@') + 1));
  return m ? Number(m[1]) : undefined;
}

function displayProxy(
  scheme: ProxyScheme,
  host: string,
  port: number,
  credentials: Credentials | undefined,
): string {
  const user = credentials ? `${encodeURIComponent(credentials.user)}:***@` : '';
  return `${scheme}://${user}${formatHost(host)}:${port}`;
}

/** The same proxy with other credentials (from `--proxy-user`, which wins over the URL's, as in curl). */
export function withCredentials(proxy: ProxyUrl, credentials: Credentials | undefined): ProxyUrl {
  return { ...proxy, credentials, display: displayProxy(proxy.scheme, proxy.host, proxy.port, credentials) };
}

/**
 * Redacts the password of any URL-looking text, for messages about input that did not parse. The password runs to
 * the last `@`: text that failed to parse may hold a raw `/` or `@` in it, and the redaction errs on the wide side.
 */
export function redactUrlText(text: string): string {
  return text.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)?([^/@:]*):[\s\S]*@/i,
    (_m, s: string | undefined, u: string) => `${s ?? ''}${u}:***@`,
  );
}
