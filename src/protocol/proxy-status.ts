/**
 * The Proxy-Status response field (RFC 9209): which intermediary produced an error and why. Parsed leniently for
 * display (it is advisory) and serialized by wsvia's own servers.
 */
import { splitOutsideQuotes, unquote } from './headers.js';

export interface ProxyStatusEntry {
  /** The intermediary's name (an sf-token or sf-string). */
  readonly proxy: string;
  /** Parameters such as `error`, `details`, `rcode`, `received-status`. */
  readonly params: Readonly<Record<string, string>>;
}

/** RFC 9209 §2.3 error types that wsvia's servers send. */
export const PROXY_ERROR_TYPES = [
  'dns_timeout',
  'dns_error',
  'destination_not_found',
  'destination_unavailable',
  'destination_ip_prohibited',
  'destination_ip_unroutable',
  'connection_refused',
  'connection_terminated',
  'connection_timeout',
  'connection_read_timeout',
  'connection_write_timeout',
  'connection_limit_reached',
  'tls_protocol_error',
  'tls_certificate_error',
  'tls_alert_received',
  'http_request_error',
  'http_request_denied',
  'http_response_incomplete',
  'http_response_header_section_size',
  'http_response_timeout',
  'http_upgrade_failed',
  'http_protocol_error',
  'proxy_internal_response',
  'proxy_internal_error',
  'proxy_configuration_error',
  'proxy_loop_detected',
] as const;
export type ProxyErrorType = (typeof PROXY_ERROR_TYPES)[number];

/** Parses every Proxy-Status value (a List, RFC 8941 §3.1). Malformed members are kept as best understood. */
export function parseProxyStatus(values: readonly string[]): ProxyStatusEntry[] {
  const entries: ProxyStatusEntry[] = [];
  for (const member of values.flatMap((v) => splitOutsideQuotes(v, ','))) {
    const [name, ...params] = splitOutsideQuotes(member, ';');
    if (name === undefined || name.trim() === '') continue;
    const p: Record<string, string> = {};
    for (const param of params) {
      const eq = param.indexOf('=');
      const key = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      if (key) p[key] = eq < 0 ? 'true' : unquote(param.slice(eq + 1));
    }
    entries.push({ proxy: unquote(name), params: p });
  }
  return entries;
}

/** One line for humans: `squid: error=dns_error, details="no such host"`. */
export function describeProxyStatus(entries: readonly ProxyStatusEntry[]): string {
  return entries
    .map((e) => {
      const ps = Object.entries(e.params).map(([k, v]) =>
        /^[\w.-]+$/.test(v) ? `${k}=${v}` : `${k}=${JSON.stringify(v)}`,
      );
      return ps.length ? `${e.proxy}: ${ps.join(', ')}` : e.proxy;
    })
    .join('; ');
}

/** Serializes one entry (RFC 9209 §2): `wsvia; error=connection_refused; details="..."`. */
export function formatProxyStatus(proxy: string, error: ProxyErrorType, details?: string): string {
  const d = details === undefined ? '' : `; details=${JSON.stringify(details.replace(/[^\x20-\x7e]/g, '?'))}`;
  return `${proxy}; error=${error}${d}`;
}
