/**
 * Is TLS to the target intercepted on this path? Two signs: the issuer of the certificate seen through the proxy
 * names a known inspecting product (dial/interception.ts), or a direct connection, when this network allows one,
 * sees a different certificate than the proxy path does.
 */
import { TLSSocket } from 'node:tls';
import type WebSocket from 'ws';
import { dialDetailed, type DialTarget } from '../dial/dial.js';
import { knownInterceptor, summarizeCertificate, type CertSummary } from '../dial/interception.js';
import type { DialOptions } from '../dial/options.js';
import { isWsviaError } from '../errors.js';

export interface InterceptionFinding {
  readonly intercepted: boolean;
  /** The product the issuer names, if any. */
  readonly product: string | undefined;
  /** The issuer of the certificate seen through the proxy. */
  readonly issuer: string;
  /** true: the direct certificate has another issuer; false: same issuer; undefined: no direct comparison. */
  readonly differsFromDirect: boolean | undefined;
  /** What the direct comparison saw, for the report. */
  readonly direct: string;
}

/** Milliseconds allowed for the direct comparison's TCP and TLS (short: on many networks it cannot work). */
const DIRECT_TIMEOUT = 3000;

export async function checkInterception(
  target: DialTarget,
  seen: CertSummary,
  options: Pick<DialOptions, 'servername' | 'signal'>,
): Promise<InterceptionFinding> {
  const product = knownInterceptor(seen.issuer);
  let differsFromDirect: boolean | undefined;
  let direct: string;
  try {
    const d = await dialDetailed(target, {
      proxy: false,
      rejectUnauthorized: false,
      alpn: ['http/1.1'],
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      timeouts: { tcp: DIRECT_TIMEOUT, tls: DIRECT_TIMEOUT },
    });
    d.socket.destroy();
    const cert = d.certificate;
    if (!cert) direct = 'a direct connection presented no certificate';
    else {
      // An interceptor signs with its own CA, so the issuer changes. Another certificate from the same issuer is
      // what load-balanced servers and CDN edges present: not counted as interception.
      differsFromDirect = cert.issuer !== seen.issuer;
      const sameCert = seen.fingerprint256
        ? cert.fingerprint256 === seen.fingerprint256
        : cert.subject === seen.subject && !differsFromDirect;
      direct = differsFromDirect
        ? `a direct connection sees another certificate (${cert.subject} issued by ${cert.issuer})`
        : sameCert
          ? 'a direct connection sees the same certificate'
          : `a direct connection sees another certificate from the same issuer (${cert.subject}): load-balanced servers do this, not counted as interception`;
    }
  } catch (e) {
    direct = `no direct comparison: a direct connection failed (${isWsviaError(e) ? e.code : String(e)})`;
  }
  return {
    intercepted: product !== undefined || differsFromDirect === true,
    product,
    issuer: seen.issuer,
    differsFromDirect,
    direct,
  };
}

/**
 * The certificate chain the server (or an interceptor) presented on an open WebSocket, leaf first. `ws` keeps its
 * socket as `_socket`; wsvia's `connect()` gave it a TLSSocket for wss.
 */
export function presentedChain(ws: WebSocket): CertSummary[] {
  const socket = (ws as unknown as { _socket?: unknown })._socket;
  if (!(socket instanceof TLSSocket)) return [];
  const chain: CertSummary[] = [];
  let cert = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  // Bounded: a chain longer than 10 is not one a client would build; a self-signed root points to itself.
  for (let i = 0; i < 10 && cert && Object.keys(cert).length > 0; i++) {
    if (seen.has(cert.fingerprint256)) break;
    seen.add(cert.fingerprint256);
    const s = summarizeCertificate(cert);
    if (s) chain.push(s);
    cert = cert.issuerCertificate;
  }
  return chain;
}
