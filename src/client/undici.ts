/**
 * wsvia routes for undici: {@link wsviaConnector} is undici's `connect` option (a function from connection
 * options to a socket), so `new undici.Agent({ connect: wsviaConnector(options) })` makes undici's `fetch`,
 * `request` and `WebSocket` dial through wsvia (environment, PAC, SOCKS, chains, proxy authentication). It does
 * not import undici: the application brings its own (an optional peer dependency).
 * {@link wsviaDispatcher} builds that Agent, loading undici when called.
 */
import type { Duplex } from 'node:stream';
import { dialDetailed } from '../dial/dial.js';
import type { DialOptions } from '../dial/options.js';
import { WsviaError } from '../errors.js';

/** What undici passes its `connect` function (the fields wsvia reads). */
export interface UndiciConnectOptions {
  readonly hostname: string;
  readonly host?: string;
  readonly protocol: string;
  readonly port: string | number;
  readonly servername?: string | null;
}

/** undici's `connect` function type: opens a socket for undici's `options`, reports it to `callback`. */
export type UndiciConnector = (
  options: UndiciConnectOptions,
  callback: (err: Error | null, socket: Duplex | null) => void,
) => void;

/**
 * undici's `connect` option, dialling along wsvia routes.
 *
 * @example
 * import { Agent, fetch } from 'undici';
 * const dispatcher = new Agent({ connect: wsviaConnector({ proxy: 'socks5h://127.0.0.1:1080' }) });
 * await fetch('https://example.com/', { dispatcher });
 */
export function wsviaConnector(options: DialOptions = {}): UndiciConnector {
  return (o, callback) => {
    const secure = o.protocol === 'https:' || o.protocol === 'wss:';
    const host = o.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = o.port === '' || o.port === undefined ? (secure ? 443 : 80) : Number(o.port);
    dialDetailed(
      { host, port, tls: secure },
      {
        ...options,
        ...(o.servername ? { servername: o.servername } : {}),
        alpn: options.alpn ?? ['http/1.1'],
      },
    ).then(
      ({ socket }) => {
        callback(null, socket);
        process.nextTick(() => socket.resume());
      },
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e)), null),
    );
  };
}

/**
 * An undici `Agent` (a Dispatcher) whose connections follow wsvia routes; pass it as `dispatcher` to undici's
 * `fetch`, `request` or `WebSocket`. Loads the `undici` package (install it: it is an optional peer dependency).
 */
export async function wsviaDispatcher(options: DialOptions = {}): Promise<unknown> {
  let undici: { Agent: new (o: { connect: UndiciConnector }) => unknown };
  try {
    undici = (await import('undici')) as typeof undici;
  } catch (e) {
    throw new WsviaError(
      'INVALID_ARGUMENT',
      'wsviaDispatcher needs the undici package, which is not installed',
      {
        hop: 'config',
        hint: 'npm install undici (or build your own Agent with { connect: wsviaConnector(options) })',
        cause: e,
      },
    );
  }
  return new undici.Agent({ connect: wsviaConnector(options) });
}
