/**
 * Listening, the same way for every server and its admin port: an address that cannot be bound is a
 * `LISTEN_FAILED` error naming the address, the flag it came from and the system's reason, raised before the
 * server says it listens. After listening, a server's `error` events are per connection (EMFILE on accept when out
 * of file descriptors): they are swallowed so the server and the connections it has keep running.
 */
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WsviaError } from '../errors.js';
import { formatHost } from '../protocol/authority.js';

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is in use by another process',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this host',
};

function ignore(): void {}

/** The error for a bind that failed: one line, `what` naming the flag or config key. */
export function listenFailed(host: string, port: number, what: string, e: NodeJS.ErrnoException): WsviaError {
  const code = e.code ?? 'unknown error';
  const reason = REASONS[code] ?? e.message;
  return new WsviaError(
    'LISTEN_FAILED',
    `cannot listen on ${formatHost(host)}:${port} (${what}): ${reason} (${code})`,
    {
      hop: 'server',
      cause: e,
    },
  );
}

/** Binds `server` to `host:port`; rejects with {@link listenFailed}. */
export function listen(server: net.Server, host: string, port: number, what: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => reject(listenFailed(host, port, what, e));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      server.on('error', ignore);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Stops accepting (if it still does) and resolves once every connection the server tracks has closed. */
export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
