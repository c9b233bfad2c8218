/**
 * Header rewriting for forwarded (absolute-form) requests and their responses, RFC 9110 §7.6: hop-by-hop fields
 * are removed (those §7.6.1 lists and every field the Connection header names), a Via entry is appended (§7.6.3),
 * and the proxy's own credentials never travel on (Proxy-Authorization is consumed here, RFC 9110 §11.7.2).
 */
import { HOP_BY_HOP_FIELDS, headerTokens, type HeaderList } from '../protocol/headers.js';

/** The hop-by-hop fields, and the proxy's own credentials (consumed here, RFC 9110 §11.7.2). */
const HOP_BY_HOP = new Set<string>([...HOP_BY_HOP_FIELDS, 'proxy-authorization', 'proxy-authenticate']);

/**
 * The end-to-end fields of `headers`. Transfer-Encoding stays: the body is relayed with its framing untouched, so
 * its coding is still the one the next hop receives.
 */
export function endToEnd(headers: HeaderList): [string, string][] {
  const named = new Set(headerTokens(headers, 'connection'));
  return headers
    .filter(([k]) => {
      const l = k.toLowerCase();
      return !HOP_BY_HOP.has(l) && !named.has(l);
    })
    .map(([k, v]): [string, string] => [k, v]);
}

/** Appends this hop to Via (RFC 9110 §7.6.3): `1.1 wsvia`, after what earlier hops wrote. */
export function withVia(
  headers: [string, string][],
  version: '1.0' | '1.1',
  name: string,
): [string, string][] {
  headers.push(['Via', `${version} ${name}`]);
  return headers;
}
