/**
 * The SOCKS hop: SOCKS4, SOCKS4a, SOCKS5 and SOCKS5h over a stream already connected to the proxy, driving the
 * sans-I/O {@link SocksHandshake}. Names are resolved as curl does: `socks4://` and `socks5://` here, before
 * the handshake; `socks4a://` and `socks5h://` at the proxy (the name is sent). Username/password (RFC 1929) come
 * from the proxy URL or `proxyAuth`. A refusal is a typed error naming the SOCKS reply.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WsviaError } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import { SocksHandshake, type SocksRequest, type SocksResult } from '../protocol/socks-client.js';
import type { SocksRefusal } from '../protocol/socks-reply.js';
import type { Tracer } from '../observe/trace.js';
import type { ProxyUrl } from '../route/proxy-url.js';
import { step } from './wait.js';

export interface SocksStep {
  readonly proxy: ProxyUrl;
  readonly target: Authority;
  /** Limit for local name resolution plus the whole handshake: TUNNEL_TIMEOUT. */
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  readonly tracer: Tracer;
}

export interface SocksTunnel {
  readonly socket: Duplex;
  /** Bytes the destination sent glued to the proxy's reply: the first bytes of the tunnel. */
  readonly leftover: Uint8Array;
}

/** Whether the proxy resolves names (curl: socks4a and socks5h) rather than wsvia. */
export function resolvesAtProxy(proxy: ProxyUrl): boolean {
  return proxy.scheme === 'socks4a' || proxy.scheme === 'socks5h';
}

async function localAddress(s: SocksStep): Promise<string> {
  const { host } = s.target;
  const family = s.proxy.scheme === 'socks4' ? 4 : 0;
  if (net.isIP(host) !== 0) {
    if (family === 4 && net.isIPv6(host)) {
      throw new WsviaError(
        'INVALID_ARGUMENT',
        `${s.proxy.display} cannot carry the IPv6 address ${host}: SOCKS4 has IPv4 addresses only`,
        { hop: 'config', proxy: s.proxy.display, hint: 'use a socks5:// proxy for IPv6 destinations' },
      );
    }
    return host;
  }
  const started = s.tracer.elapsed();
  try {
    const { address } = await dns.promises.lookup(host, { family });
    s.tracer.emit({ type: 'dns', host, address, ms: s.tracer.elapsed() - started });
    return address;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
    throw new WsviaError('DNS_FAILED', `cannot resolve ${host} (${code}) for ${s.proxy.display}`, {
      hop: 'dns',
      proxy: s.proxy.display,
      target: formatAuthority(s.target),
      hint: `${s.proxy.scheme}:// resolves names locally (as curl does); use ${s.proxy.scheme === 'socks4' ? 'socks4a' : 'socks5h'}:// to let the proxy resolve them`,
      cause: e,
    });
  }
}

function refused(refusal: SocksRefusal, s: SocksStep, destination: string): WsviaError {
  return new WsviaError(
    refusal.code,
    `proxy ${s.proxy.display} answered "${refusal.reply}" to CONNECT ${destination}`,
    {
      hop: 'proxy',
      proxy: s.proxy.display,
      target: formatAuthority(s.target),
      answer: { statusLine: `SOCKS: ${refusal.reply}` },
      hint: refusal.hint,
      ...(s.proxy.credentials ? { details: { user: s.proxy.credentials.user } } : {}),
    },
  );
}

function closedDuring(s: SocksStep, destination: string, cause?: Error): WsviaError {
  return new WsviaError(
    'CONNECTION_RESET',
    `proxy ${s.proxy.display} closed the connection during the SOCKS handshake for ${destination}`,
    {
      hop: 'proxy',
      proxy: s.proxy.display,
      target: formatAuthority(s.target),
      hint: `is it a ${s.proxy.scheme.startsWith('socks4') ? 'SOCKS4' : 'SOCKS5'} proxy? a SOCKS5-only server drops SOCKS4 requests, and the other way round`,
      ...(cause ? { cause } : {}),
    },
  );
}

function malformed(why: string, s: SocksStep, destination: string): WsviaError {
  return new WsviaError(
    'PROTOCOL_ERROR',
    `proxy ${s.proxy.display} did not complete the SOCKS handshake for ${destination}: ${why}`,
    {
      hop: 'proxy',
      proxy: s.proxy.display,
      target: formatAuthority(s.target),
      hint: 'is this really a SOCKS proxy (and this version of it)? http:// proxies need an http:// URL',
    },
  );
}

/**
 * Runs the handshake on `socket` in paused mode ('readable' + read()), so that once it is over the stream is back
 * in its initial state, paused, and nothing it received is lost: the bytes after the final reply are the result.
 */
function handshake(socket: Duplex, request: SocksRequest): Promise<SocksResult | Error> {
  const h = new SocksHandshake(request);
  return new Promise((resolve) => {
    const flush = (): void => {
      for (const b of h.dataToSend()) socket.write(b);
    };
    const done = (r: SocksResult | Error): void => {
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
      resolve(r);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        const r = h.receiveData(chunk);
        if (r) return done(r);
        flush();
      }
    };
    const onEnd = (): void => done(new Error('closed'));
    const onError = (e: Error): void => done(e);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    flush();
  });
}

/**
 * Asks the SOCKS proxy at the other end of `socket` to connect to the target. Resolves with the same socket,
 * paused, once the proxy granted it.
 */
export function openSocksTunnel(socket: Duplex, s: SocksStep): Promise<SocksTunnel> {
  const authority = formatAuthority(s.target);
  return step<SocksTunnel>(
    s.timeout,
    () =>
      new WsviaError(
        'TUNNEL_TIMEOUT',
        `proxy ${s.proxy.display} did not grant CONNECT ${authority} within ${s.timeout} ms`,
        {
          hop: 'proxy',
          proxy: s.proxy.display,
          target: authority,
          hint: 'the proxy may be stuck reaching the destination; or it is not a SOCKS proxy and waits for something else',
        },
      ),
    s.signal,
    (ctl) => {
      let over = false;
      let handedOut = false;
      ctl.onSettle(() => {
        over = true;
        // Timeout, abort or failure: the socket is not handed out, so close it (the package then gives up too).
        if (!handedOut) socket.destroy();
      });
      const run = async (): Promise<SocksTunnel> => {
        const atProxy = resolvesAtProxy(s.proxy);
        const host = atProxy ? s.target.host : await localAddress(s);
        if (over) throw new Error('settled');
        const destination = formatAuthority({ host, port: s.target.port });
        const version = s.proxy.scheme.startsWith('socks4') ? 4 : 5;
        const creds = s.proxy.credentials;
        const request: SocksRequest = {
          version,
          host,
          port: s.target.port,
          ...(creds ? { user: creds.user, ...(version === 5 ? { password: creds.reveal() } : {}) } : {}),
        };
        const started = s.tracer.elapsed();
        s.tracer.emit({
          type: 'note',
          text: `${s.proxy.scheme}: CONNECT ${destination} via ${s.proxy.display}${atProxy ? ' (name resolved by the proxy)' : host === s.target.host ? '' : ` (${s.target.host} resolved locally)`}${creds ? ` as user "${creds.user}"` : ''}`,
          ms: started,
        });
        let r: SocksResult | Error;
        try {
          r = await handshake(socket, request);
        } catch (e) {
          // The request itself cannot be encoded (a name over 255 bytes, ...): our argument, not the proxy.
          throw new WsviaError(
            'INVALID_ARGUMENT',
            `cannot ask ${s.proxy.display} for ${destination}: ${String(e)}`,
            {
              hop: 'config',
              proxy: s.proxy.display,
            },
          );
        }
        if (r instanceof Error) throw closedDuring(s, destination, r.message === 'closed' ? undefined : r);
        if (r.kind === 'refused') throw refused(r.refusal, s, destination);
        if (r.kind === 'malformed') throw malformed(r.why, s, destination);
        const bound = r.bound ? ` (bound ${formatAuthority(r.bound)})` : '';
        s.tracer.emit({
          type: 'note',
          text: `${s.proxy.scheme}: granted by ${s.proxy.display}${bound}`,
          ms: s.tracer.elapsed() - started,
        });
        return { socket, leftover: r.leftover };
      };
      run().then(
        (t) => {
          if (over) return void t.socket.destroy();
          handedOut = true;
          ctl.resolve(t);
        },
        (e: unknown) => ctl.reject(e),
      );
    },
  );
}
