/**
 * The SOCKS hop: SOCKS4, SOCKS4a, SOCKS5 and SOCKS5h over a stream already connected to the proxy, with the
 * `socks` package doing the handshake. Names are resolved as curl does: `socks4://` and `socks5://` here, before
 * the handshake; `socks4a://` and `socks5h://` at the proxy (the name is sent). Username/password (RFC 1929) come
 * from the proxy URL or `proxyAuth`. A refusal is a typed error naming the SOCKS reply.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { SocksClientOptions } from 'socks';
import { WsviaError } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import { socksRefusal } from '../protocol/socks-reply.js';
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

function failure(message: string, s: SocksStep, destination: string, cause: unknown): WsviaError {
  const base = { hop: 'proxy' as const, proxy: s.proxy.display, target: formatAuthority(s.target), cause };
  const refusal = socksRefusal(message, s.proxy.credentials !== undefined);
  if (refusal) {
    return new WsviaError(
      refusal.code,
      `proxy ${s.proxy.display} answered "${refusal.reply}" to CONNECT ${destination}`,
      {
        ...base,
        answer: { statusLine: `SOCKS: ${refusal.reply}` },
        hint: refusal.hint,
        ...(s.proxy.credentials ? { details: { user: s.proxy.credentials.user } } : {}),
      },
    );
  }
  if (message === 'Socket closed') {
    return new WsviaError(
      'CONNECTION_RESET',
      `proxy ${s.proxy.display} closed the connection during the SOCKS handshake for ${destination}`,
      {
        ...base,
        hint: `is it a ${s.proxy.scheme.startsWith('socks4') ? 'SOCKS4' : 'SOCKS5'} proxy? a SOCKS5-only server drops SOCKS4 requests, and the other way round`,
      },
    );
  }
  return new WsviaError(
    'PROTOCOL_ERROR',
    `proxy ${s.proxy.display} did not complete the SOCKS handshake for ${destination}: ${message}`,
    { ...base, hint: 'is this really a SOCKS proxy? http:// proxies need an http:// URL' },
  );
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
        const options: SocksClientOptions = {
          proxy: {
            host: s.proxy.host,
            port: s.proxy.port,
            type: version,
            ...(creds ? { userId: creds.user, ...(version === 5 ? { password: creds.reveal() } : {}) } : {}),
          },
          command: 'connect',
          destination: { host, port: s.target.port },
          // The step's own timer is the limit; the package's is only a backstop.
          timeout: s.timeout + 1000,
          existing_socket: socket,
        };
        const started = s.tracer.elapsed();
        s.tracer.emit({
          type: 'note',
          text: `${s.proxy.scheme}: CONNECT ${destination} via ${s.proxy.display}${atProxy ? ' (name resolved by the proxy)' : host === s.target.host ? '' : ` (${s.target.host} resolved locally)`}${creds ? ` as user "${creds.user}"` : ''}`,
          ms: started,
        });
        // Loaded on first use: the package and its address library cost ~100 ms of start-up.
        const { SocksClient } = await import('socks');
        let info;
        try {
          const pending = SocksClient.createConnection(options);
          // A stream from an earlier hop arrives paused, and a 'data' listener does not resume a paused stream.
          socket.resume();
          info = await pending;
        } catch (e) {
          throw failure(e instanceof Error ? e.message : String(e), s, destination, e);
        }
        // The package hands excess bytes to the socket by emitting 'data' on the next turn, then resumes it:
        // collect them until then, and pause again, so the stream is handed out paused with its leftover.
        const parts: Buffer[] = [];
        const collect = (c: Buffer): void => void parts.push(c);
        info.socket.on('data', collect);
        await new Promise((r) => setImmediate(r));
        info.socket.removeListener('data', collect);
        info.socket.pause();
        const bound = info.remoteHost ? ` (bound ${formatAuthority(info.remoteHost)})` : '';
        s.tracer.emit({
          type: 'note',
          text: `${s.proxy.scheme}: granted by ${s.proxy.display}${bound}`,
          ms: s.tracer.elapsed() - started,
        });
        return { socket: info.socket, leftover: Buffer.concat(parts) };
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
