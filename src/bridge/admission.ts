/**
 * What may come in: the checks a WebSocket upgrade passes before the bridge connects anywhere (handshake shape,
 * credentials, Origin), each answering with a {@link Refusal}: an HTTP status, a one-line reason and a metric label.
 */
import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import net, { type Socket } from 'node:net';
import type { ServerAuth } from '../auth/server-auth.js';

/** Why an upgrade is refused: the status and reason the client is shown, the label it is counted under. */
export class Refusal {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly metric: string,
    readonly headers: readonly (readonly [string, string])[] = [],
  ) {}
}

/** The subprotocols a client offers (Sec-WebSocket-Protocol), in order. */
export function offeredProtocols(req: http.IncomingMessage): string[] {
  const h = req.headers['sec-websocket-protocol'];
  if (h === undefined) return [];
  return h
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/**
 * The checks `ws` makes before a 101 (RFC 6455 §4.2.1), made first here so that a malformed request is refused
 * before the bridge connects to any target.
 */
export function checkHandshake(req: http.IncomingMessage): Refusal | undefined {
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  if (req.method !== 'GET' || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
    return new Refusal(400, 'not a WebSocket upgrade (GET with Upgrade: websocket)', 'handshake');
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key))
    return new Refusal(400, 'missing or invalid Sec-WebSocket-Key', 'handshake');
  if (version !== '13' && version !== '8')
    return new Refusal(400, 'unsupported Sec-WebSocket-Version (13 expected)', 'handshake', [
      ['Sec-WebSocket-Version', '13, 8'],
    ]);
  return undefined;
}

/** A cookie's value from a Cookie header (RFC 6265 §5.4), or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return part.slice(eq + 1).trim();
      }
    }
  }
  return null;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Basic (a user store) and bearer tokens; none configured lets everyone in. */
export function makeAuthCheck(
  auth: ServerAuth | undefined,
  bearerTokens: readonly string[] | undefined,
): (req: http.IncomingMessage) => Promise<Refusal | undefined> {
  return async function checkAuth(req) {
    const bearer = bearerTokens ?? [];
    if (!auth && bearer.length === 0) return undefined;
    const value = req.headers.authorization;
    const challenges: [string, string][] = [
      ...(auth ? auth.challenges().map((c) => ['WWW-Authenticate', c] as [string, string]) : []),
      ...(bearer.length > 0 ? [['WWW-Authenticate', 'Bearer realm="wsvia bridge"'] as [string, string]] : []),
    ];
    if (value === undefined) return new Refusal(401, 'credentials required', 'auth', challenges);
    if (/^bearer\s/i.test(value)) {
      const token = value.replace(/^bearer\s+/i, '').trim();
      if (bearer.some((b) => sameText(b, token))) return undefined;
      return new Refusal(401, 'bearer token rejected', 'auth', challenges);
    }
    if (auth) {
      const r = await auth.check(value, req.method ?? 'GET', req.url ?? '/');
      if (r.ok) return undefined;
      return new Refusal(
        401,
        r.reason === 'rejected' ? 'credentials rejected' : 'credentials malformed',
        'auth',
        challenges,
      );
    }
    return new Refusal(401, 'credentials rejected', 'auth', challenges);
  };
}

/**
 * The origins of the bridge's own pages: the address the connection was accepted on, as a browser that loaded a
 * page from it writes it (`http://127.0.0.1:6080`, `https://[::1]:8443`, the port left out when it is the
 * scheme's default), and `localhost` too on a loopback address. Never the request's Host header: a DNS rebinding
 * page sends `Host` and `Origin` of its own name, both pointing at us (STYLE.md trap 19). A page served under a
 * name is allowed by naming its origin with `--allow-origin`.
 */
export function ownOrigins(socket: Socket, scheme: 'http' | 'https'): string[] {
  const address = socket.localAddress;
  if (address === undefined) return [];
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const ip = (mapped ?? address).toLowerCase();
  const port = socket.localPort === (scheme === 'https' ? 443 : 80) ? '' : `:${socket.localPort ?? 0}`;
  const hosts = [net.isIPv6(ip) ? `[${ip}]` : ip];
  if (ip.startsWith('127.') || ip === '::1') hosts.push('localhost');
  return hosts.map((h) => `${scheme}://${h}${port}`);
}

/**
 * Browsers' Origin (cross-site WebSocket hijacking, websockify#435): `allowOrigins` (`*` any), else any when the
 * bridge serves no pages, else only its own pages' origin ({@link ownOrigins}).
 */
export function makeOriginCheck(
  allowOrigins: readonly string[] | undefined,
  servesPages: boolean,
  scheme: 'http' | 'https',
): (req: http.IncomingMessage) => Refusal | undefined {
  return function checkOrigin(req) {
    const origin = req.headers.origin;
    const allowed = allowOrigins ?? (servesPages ? [] : ['*']);
    // Non-browser clients send no Origin; the check protects browsers' users (cross-site WebSocket hijacking).
    if (origin === undefined || allowed.includes('*')) return undefined;
    const o = origin.toLowerCase();
    if (allowed.some((a) => a.toLowerCase() === o)) return undefined;
    if (servesPages && ownOrigins(req.socket, scheme).includes(o)) return undefined;
    return new Refusal(
      403,
      `Origin ${origin} is not allowed (the bridge accepts ${[...allowed, ...(servesPages ? ['its own pages'] : [])].join(', ') || 'no browser origin'}; see --allow-origin)`,
      'origin',
    );
  };
}
