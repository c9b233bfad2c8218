/**
 * The string a PAC file's `FindProxyForURL()` returns: entries separated by `;`, each `DIRECT` or a keyword and
 * `host:port` (the Netscape PAC note, as browsers read it). Keywords: `PROXY` and `HTTP` (an HTTP proxy), `HTTPS`
 * (an HTTP proxy spoken to over TLS), `SOCKS` and `SOCKS4` (SOCKS4, names resolved locally, as Chrome does), and
 * `SOCKS5` (names sent to the proxy, as browsers do: wsvia's socks5h). Like browsers, entries that do not parse
 * are skipped; a result with no usable entry is an error that quotes it.
 */
import { WsviaError } from '../errors.js';
import { parseProxyUrl, type ProxyScheme, type ProxyUrl } from './proxy-url.js';

/** One usable entry of a PAC result: DIRECT, or a proxy. */
export type PacEntry =
  | { readonly kind: 'direct'; readonly text: string }
  | { readonly kind: 'proxy'; readonly proxy: ProxyUrl; readonly text: string };

/** A PAC result, parsed: the entries to try in order and those skipped. */
export interface PacResult {
  /** Usable entries, in the order the PAC gave them: try them in this order. */
  readonly entries: readonly PacEntry[];
  /** Entries that did not parse, as written (skipped, as browsers do). */
  readonly skipped: readonly string[];
}

const KEYWORDS: Readonly<Record<string, ProxyScheme>> = {
  PROXY: 'http',
  HTTP: 'http',
  HTTPS: 'https',
  SOCKS: 'socks4',
  SOCKS4: 'socks4',
  SOCKS5: 'socks5h',
};

/** Results longer than this are refused: a PAC has no reason to return more (and a loop building one must stop). */
export const MAX_PAC_RESULT = 64 * 1024;

function quote(text: string): string {
  const shown = text.length > 120 ? `${text.slice(0, 120)}...` : text;
  return JSON.stringify(shown);
}

function parseEntry(raw: string): PacEntry | undefined {
  const parts = raw.trim().split(/\s+/);
  const keyword = (parts[0] ?? '').toUpperCase();
  if (keyword === 'DIRECT' && parts.length === 1) return { kind: 'direct', text: 'DIRECT' };
  const scheme = KEYWORDS[keyword];
  if (scheme === undefined || parts.length !== 2) return undefined;
  const hostPort = parts[1] as string;
  // host:port only: no scheme, credentials, path or stray characters.
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(hostPort)) return undefined;
  try {
    const proxy = parseProxyUrl(`${scheme}://${hostPort}`);
    if (proxy.port < 1 || proxy.port > 65535) return undefined;
    return { kind: 'proxy', proxy, text: `${keyword} ${hostPort}` };
  } catch {
    return undefined;
  }
}

/**
 * Parses what `FindProxyForURL()` returned. Throws CONFIG_INVALID (hop `route`) when it is not a string, is too
 * long, or holds no usable entry.
 */
export function parsePacResult(value: unknown): PacResult {
  if (typeof value !== 'string') {
    throw new WsviaError('CONFIG_INVALID', `the PAC file returned ${describeValue(value)}, not a string`, {
      hop: 'route',
      hint: 'FindProxyForURL must return a string such as "PROXY host:port; DIRECT"',
    });
  }
  if (value.length > MAX_PAC_RESULT) {
    throw new WsviaError(
      'CONFIG_INVALID',
      `the PAC file returned ${value.length} characters, more than the limit of ${MAX_PAC_RESULT}`,
      { hop: 'route', hint: 'FindProxyForURL must return a short list such as "PROXY host:port; DIRECT"' },
    );
  }
  const entries: PacEntry[] = [];
  const skipped: string[] = [];
  for (const raw of value.split(';')) {
    if (raw.trim() === '') continue;
    const entry = parseEntry(raw);
    if (entry) entries.push(entry);
    else skipped.push(raw.trim());
  }
  if (entries.length === 0) {
    throw new WsviaError(
      'CONFIG_INVALID',
      `the PAC file returned ${quote(value)}, which holds no usable entry`,
      {
        hop: 'route',
        hint: 'each entry is DIRECT, or PROXY, HTTPS, SOCKS, SOCKS4 or SOCKS5 followed by host:port, separated by ";"',
        details: { skipped },
      },
    );
  }
  return { entries, skipped };
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  return typeof v;
}

/** `PROXY a:3128` for an entry, as the PAC wrote it (normalised). */
export function describePacEntry(e: PacEntry): string {
  return e.text;
}
