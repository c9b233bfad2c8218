/** TCP to the first hop (a proxy or the target), with DNS and connect failures told apart. */
import net from 'node:net';
import { WsviaError } from '../errors.js';
import { formatAuthority } from '../protocol/authority.js';
import type { Tracer } from '../observe/trace.js';
import { step } from './wait.js';

export interface TcpStep {
  readonly host: string;
  readonly port: number;
  /** What this hop is, for errors and the trace. */
  readonly to: 'proxy' | 'server';
  /** How to name the peer in messages, e.g. `proxy http://p:3128`. */
  readonly peer: string;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  readonly tracer: Tracer;
}

/** Maps a socket error during connect to a typed error naming the hop. */
export function tcpError(
  err: NodeJS.ErrnoException,
  s: Pick<TcpStep, 'host' | 'port' | 'to' | 'peer'>,
): WsviaError {
  const where = formatAuthority(s);
  const isProxy = s.to === 'proxy';
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EAI_FAIL':
      return new WsviaError('DNS_FAILED', `cannot resolve ${s.host} (${err.code})`, {
        hop: 'dns',
        ...(isProxy ? { proxy: s.peer } : { target: where }),
        hint: isProxy
          ? 'check the proxy host name'
          : 'check the host name, or whether this network needs a proxy (--proxy)',
        cause: err,
      });
    case 'ECONNREFUSED':
      return new WsviaError(
        isProxy ? 'PROXY_CONNECT_FAILED' : 'CONNECTION_REFUSED',
        isProxy ? `${s.peer} refused the connection to ${where}` : `${where} refused the connection`,
        {
          hop: 'tcp',
          ...(isProxy ? { proxy: s.peer } : { target: where }),
          hint: isProxy
            ? 'is the proxy running on that port?'
            : 'nothing listens there, or a firewall rejects it',
          cause: err,
        },
      );
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'EADDRNOTAVAIL':
      return new WsviaError(
        isProxy ? 'PROXY_CONNECT_FAILED' : 'CONNECTION_REFUSED',
        `no route to ${s.peer} at ${where} (${err.code})`,
        {
          hop: 'tcp',
          ...(isProxy ? { proxy: s.peer } : { target: where }),
          ...(isProxy
            ? {}
            : { hint: 'this network may only allow traffic through a proxy (--proxy, or https_proxy)' }),
          cause: err,
        },
      );
    default:
      return new WsviaError(
        isProxy ? 'PROXY_CONNECT_FAILED' : 'CONNECTION_RESET',
        `connection to ${s.peer} at ${where} failed (${err.code ?? err.message})`,
        {
          hop: 'tcp',
          ...(isProxy ? { proxy: s.peer } : { target: where }),
          cause: err,
        },
      );
  }
}

export function openTcp(s: TcpStep): Promise<net.Socket> {
  const started = s.tracer.elapsed();
  return step<net.Socket>(
    s.timeout,
    () =>
      new WsviaError(
        'TCP_TIMEOUT',
        `no TCP connection to ${s.peer} at ${formatAuthority(s)} within ${s.timeout} ms`,
        {
          hop: 'tcp',
          ...(s.to === 'proxy' ? { proxy: s.peer } : { target: formatAuthority(s) }),
          hint: 'the host drops packets (a firewall), or is down; this network may require a proxy',
        },
      ),
    s.signal,
    (ctl) => {
      const socket = net.connect({ host: s.host, port: s.port, noDelay: true });
      ctl.onSettle(() => {
        socket.removeListener('error', onError);
        socket.removeListener('connect', onConnect);
        socket.removeListener('lookup', onLookup);
      });
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.destroy();
        ctl.reject(tcpError(err, s));
      };
      const onLookup = (err: Error | null, address: string): void => {
        if (!err && net.isIP(s.host) === 0) {
          s.tracer.emit({ type: 'dns', host: s.host, address, ms: s.tracer.elapsed() - started });
        }
      };
      const onConnect = (): void => {
        s.tracer.emit({
          type: 'tcp',
          to: s.to,
          address: socket.remoteAddress ?? s.host,
          port: socket.remotePort ?? s.port,
          ms: s.tracer.elapsed() - started,
        });
        ctl.resolve(socket);
      };
      socket.once('error', onError);
      socket.once('lookup', onLookup);
      socket.once('connect', onConnect);
      ctl.onSettle(() => {
        // On timeout or abort the socket is not handed out: close it.
        if (socket.connecting) socket.destroy();
      });
    },
  );
}
