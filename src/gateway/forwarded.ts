/**
 * The request head the gateway sends upstream: the client's, minus hop-by-hop fields (RFC 9110 §7.6.1), plus who
 * the client is: `X-Forwarded-For/-Proto/-Host` (the de facto headers) and `Forwarded` (RFC 7239). Incoming
 * forwarding fields are kept and appended to only when the peer is trusted (--trust-proxy); from anyone else
 * they are dropped, or a client could claim any address.
 */
import type { HeaderList } from '../protocol/headers.js';
import { getHeader, headerTokens, HOP_BY_HOP_FIELDS, isToken } from '../protocol/headers.js';
import { cidrContains, ipBytes, type Cidr } from '../route/cidr.js';

const FORWARDING = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-real-ip',
]);
/** The hop-by-hop fields, and HTTP2-Settings (RFC 7540 §3.2.1, an h2c upgrade is not passed on). */
const HOP_BY_HOP = new Set<string>([...HOP_BY_HOP_FIELDS, 'http2-settings']);

export interface ClientFacts {
  /** The client's address: the socket's peer, or the PROXY protocol source. */
  readonly address: string;
  readonly proto: 'http' | 'https';
}

export function isTrusted(address: string, trust: readonly Cidr[]): boolean {
  if (trust.length === 0) return false;
  const bytes = ipBytes(address);
  return bytes !== undefined && trust.some((c) => cidrContains(c, bytes));
}

function forwardedNode(address: string): string {
  // RFC 7239 §6: an IPv6 address is bracketed and the whole value quoted.
  return address.includes(':') ? `"[${address}]"` : address;
}

function quoteIfNeeded(v: string): string {
  return isToken(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The upstream request's header fields. `upgrade`: keep `Upgrade`/`Connection: Upgrade` (a WebSocket
 * handshake); otherwise `Connection: close`, one request per upstream connection.
 */
export function upstreamHeaders(
  headers: HeaderList,
  client: ClientFacts,
  options: { trusted: boolean; upgrade: boolean },
): [string, string][] {
  const named = new Set(headerTokens(headers, 'connection'));
  const out: [string, string][] = [];
  for (const [k, v] of headers) {
    const lower = k.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    if (FORWARDING.has(lower) && !options.trusted) continue;
    if (lower === 'x-forwarded-for' || lower === 'forwarded') continue; // re-added below, appended
    out.push([k, v]);
  }
  const host = getHeader(headers, 'host');
  const prevXff = options.trusted ? getHeader(headers, 'x-forwarded-for') : undefined;
  const prevFwd = options.trusted ? getHeader(headers, 'forwarded') : undefined;
  out.push(['X-Forwarded-For', prevXff ? `${prevXff}, ${client.address}` : client.address]);
  if (!(options.trusted && getHeader(headers, 'x-forwarded-proto')))
    out.push(['X-Forwarded-Proto', client.proto]);
  if (host !== undefined && !(options.trusted && getHeader(headers, 'x-forwarded-host')))
    out.push(['X-Forwarded-Host', host]);
  const element = [`for=${forwardedNode(client.address)}`, `proto=${client.proto}`];
  if (host !== undefined) element.push(`host=${quoteIfNeeded(host)}`);
  out.push(['Forwarded', prevFwd ? `${prevFwd}, ${element.join(';')}` : element.join(';')]);
  if (options.upgrade) {
    out.push(['Connection', 'Upgrade']);
    out.push(['Upgrade', getHeader(headers, 'upgrade') ?? 'websocket']);
  } else out.push(['Connection', 'close']);
  return out;
}

/** The response head the client gets: hop-by-hop fields of the upstream's dropped, ours set. */
export function clientResponseHeaders(headers: HeaderList, keepAlive: boolean): [string, string][] {
  const named = new Set(headerTokens(headers, 'connection'));
  const out: [string, string][] = [];
  for (const [k, v] of headers) {
    const lower = k.toLowerCase();
    if (lower === 'transfer-encoding') {
      out.push([k, v]); // the body is relayed with its framing untouched
      continue;
    }
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    out.push([k, v]);
  }
  out.push(['Connection', keepAlive ? 'keep-alive' : 'close']);
  return out;
}
