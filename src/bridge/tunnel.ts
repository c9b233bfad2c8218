/**
 * `wsvia tunnel`: TCP -> WebSocket, through whatever route `connect()` knows (proxies, auth, wss, trace). A local
 * listener (-L) whose connections each ride their own WebSocket; one connection on stdin/stdout (--stdio); and
 * reverse tunnels (-R) held by a control WebSocket that pings and comes back with backoff.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { backoffDelay, type BackoffOptions } from '../client/backoff.js';
import { connect, type ConnectOptions } from '../client/connect.js';
import { isRetryable } from '../client/reconnecting.js';
import { isWsviaError, WsviaError } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import {
  BINARY_SUBPROTOCOL,
  parseControlMessage,
  REVERSE_SUBPROTOCOL,
  TUNNEL_SUBPROTOCOL,
} from '../protocol/tunnel-control.js';
import { resetStream } from '../serve/reset.js';
import { pump, type PumpResult } from './pump.js';
import { WsChannel } from './ws-client-channel.js';
import { WebSocketByteStream } from './ws-stream.js';

/** Without half-close (websockify), how long after local EOF the WebSocket stays open for the answer. */
export const DEFAULT_LINGER = 2000;

/** Where a tunnel goes: the bridge, the target to ask it for, how to connect to it. */
export interface TunnelOptions {
  /** The bridge's URL (ws:// or wss://). */
  readonly url: string;
  /** Ask the bridge for this target (`?target=`): needs its `--allow-target`. */
  readonly target?: Authority;
  readonly connect?: ConnectOptions;
  /** Milliseconds the WebSocket stays open after local EOF without half-close (default 2000, `DEFAULT_LINGER`). */
  readonly linger?: number;
  /** Notes for the trace (half-close not carried, and the like). */
  readonly onNote?: (text: string) => void;
}

/** The URL of a data connection: the bridge URL with `?target=` when the tunnel chooses. */
export function tunnelUrl(url: string, params: Readonly<Record<string, string>>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** What to do about a refusal from a wsvia bridge (its body starts with "wsvia bridge:" and says why). */
function bridgeHint(status: number): string | undefined {
  if (status === 401)
    return "give the bridge's credentials: ws://user:pass@host/ in the URL, or -H 'Authorization: Bearer TOKEN'";
  if (status === 403)
    return "the bridge's operator decides what is reachable (--allow-target, --allow-reverse, --allow-origin)";
  if (status === 404) return 'the bridge has no target for this token or path';
  if (status === 409) return 'another tunnel holds that port on the bridge';
  if (status === 429 || status === 503) return 'the bridge is at a connection limit: retry later';
  if (status === 502 || status === 504)
    return 'the bridge could not reach its target: the service behind it is down or filtered';
  return undefined;
}

/** Refusals from a wsvia bridge carry their reason in the body: keep it, with a hint that fits it. */
function explainRefusal(e: unknown): unknown {
  if (
    !isWsviaError(e) ||
    e.code !== 'UPGRADE_REJECTED' ||
    !e.answer?.bodyExcerpt?.startsWith('wsvia bridge:')
  )
    return e;
  const hint = bridgeHint(e.answer.status ?? 0);
  if (hint === undefined) return e;
  return new WsviaError(e.code, e.summary, {
    hop: e.hop,
    ...(e.proxy === undefined ? {} : { proxy: e.proxy }),
    ...(e.target === undefined ? {} : { target: e.target }),
    answer: e.answer,
    hint,
    cause: e,
  });
}

async function openData(
  options: TunnelOptions,
  params: Readonly<Record<string, string>> = {},
): Promise<WebSocket> {
  const url = tunnelUrl(options.url, {
    ...(options.target ? { target: formatAuthority(options.target) } : {}),
    ...params,
  });
  // Offer both: a wsvia bridge picks wsvia.tunnel.v1 (half-close), websockify picks binary.
  try {
    return await connect(url, { ...options.connect, protocols: [TUNNEL_SUBPROTOCOL, BINARY_SUBPROTOCOL] });
  } catch (e) {
    throw explainRefusal(e);
  }
}

/** Carries one local stream over a new WebSocket. Rejects (before any byte moves) if the WebSocket cannot open. */
export async function carry(
  local: Duplex,
  options: TunnelOptions,
  params: Readonly<Record<string, string>> = {},
): Promise<PumpResult> {
  let ws: WebSocket;
  try {
    ws = await openData(options, params);
  } catch (e) {
    // Never a clean end for a session that did not start: the local client sees a reset.
    local.on('error', () => {});
    resetStream(local);
    throw e;
  }
  const halfClose = ws.protocol === TUNNEL_SUBPROTOCOL;
  if (!halfClose)
    options.onNote?.(
      `the bridge chose subprotocol "${ws.protocol || '(none)'}": plain binary frames, no half-close (websockify); after local EOF the WebSocket stays open ${options.linger ?? DEFAULT_LINGER} ms past the last data`,
    );
  const stream = new WebSocketByteStream(new WsChannel(ws), {
    ...(halfClose ? {} : { linger: options.linger ?? DEFAULT_LINGER }),
    ...(options.onNote ? { onNote: options.onNote } : {}),
  });
  // A local stream already gone (its client left while the WebSocket opened) resets the session at once.
  const done = pump(local, stream);
  local.resume();
  return done;
}

/** A listening `-L` tunnel: the local address it accepts on. */
export interface LocalTunnel {
  readonly host: string;
  readonly port: number;
  /** Stops listening and closes every connection; resolves when all are closed. */
  close(): Promise<void>;
}

/**
 * `-L [BIND:]PORT[:HOST:PORT] URL`: listens locally; each connection gets its own WebSocket. A connection whose
 * WebSocket cannot open is closed at once (never left hanging) and the error goes to `onError`.
 */
export async function startLocalTunnel(
  listen: { host: string; port: number },
  options: TunnelOptions & { onError?: (e: unknown) => void; onSession?: (r: PumpResult) => void },
): Promise<LocalTunnel> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    carry(socket, options).then(
      (r) => options.onSession?.(r),
      (e: unknown) => options.onError?.(e),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: listen.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface ReverseTunnelEvents {
  /** The bridge listens for us. */
  onListening?(bind: string, port: number, attempt: number): void;
  /** The control connection dropped or failed; another attempt follows after `delay` ms. */
  onRetry?(err: WsviaError, delay: number): void;
  /** A connection through the tunnel could not be carried (local target down, data WebSocket refused). */
  onError?(err: unknown): void;
  onSession?(r: PumpResult): void;
}

/** A running `-R` tunnel: the bridge listens for it and hands each connection over a new WebSocket. */
export interface ReverseTunnel {
  /** Stops reconnecting and closes the control connection; resolves when it is closed. */
  close(): Promise<void>;
  /** Settles when the tunnel stops for good: rejects with the terminal error (401, 403, bad arguments). */
  readonly finished: Promise<void>;
}

/**
 * `-R [BIND:]PORT:HOST:PORT URL`: asks the bridge to listen on BIND:PORT and carries each connection there back to
 * HOST:PORT on this side. The control connection is kept alive with pings and reopened with backoff and jitter;
 * failures a retry cannot cure (refused credentials, a port the bridge does not allow) end it.
 */
export function startReverseTunnel(
  remote: { bind: string; port: number },
  local: Authority,
  options: TunnelOptions & ReverseTunnelEvents & { backoff?: BackoffOptions; ping?: number },
): ReverseTunnel {
  let stopped = false;
  let control: WebSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let finish!: (e?: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = (e?: Error) => (e === undefined ? resolve() : reject(e));
  });
  finished.catch(() => {});
  const ping = options.ping ?? 10_000;
  // Data connections of a reverse tunnel name no target: the bridge pairs them by id.
  const dataOptions: TunnelOptions = {
    url: options.url,
    ...(options.connect ? { connect: options.connect } : {}),
    ...(options.linger === undefined ? {} : { linger: options.linger }),
    ...(options.onNote ? { onNote: options.onNote } : {}),
  };

  const retry = (err: WsviaError): void => {
    if (stopped) return;
    const busy = err.code === 'UPGRADE_REJECTED' && err.answer?.status === 409;
    if (!busy && !isRetryable(err)) {
      stopped = true;
      return finish(err);
    }
    const delay = backoffDelay(failures++, options.backoff);
    options.onRetry?.(err, delay);
    timer = setTimeout(attempt, delay);
  };

  const onConnection = (id: string): void => {
    const socket = net.connect({ host: local.host, port: local.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    socket.pause();
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      carry(socket, dataOptions, { connection: id }).then(
        (r) => options.onSession?.(r),
        (e: unknown) => options.onError?.(e),
      );
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      options.onError?.(
        new WsviaError(
          'CONNECTION_REFUSED',
          `the reverse tunnel's target ${formatAuthority(local)} refused the connection (${e.code ?? e.message})`,
          {
            hop: 'tcp',
            target: formatAuthority(local),
            hint: 'start the service on this side, or fix HOST:PORT in -R',
            cause: e,
          },
        ),
      );
    });
  };

  const attempt = (): void => {
    if (stopped) return;
    const url = tunnelUrl(options.url, { listen: formatAuthority({ host: remote.bind, port: remote.port }) });
    connect(url, { ...options.connect, protocols: [REVERSE_SUBPROTOCOL], ping: { interval: ping } }).then(
      (ws) => {
        if (stopped) return ws.close(1000);
        control = ws;
        const attemptNo = failures;
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          if (isBinary) return;
          let m;
          try {
            m = parseControlMessage(data);
          } catch (e) {
            options.onError?.(e);
            return ws.close(1002, 'bad control message');
          }
          if (m.type === 'listening') {
            failures = 0;
            options.onListening?.(m.bind, m.port, attemptNo);
          } else if (m.type === 'connection') onConnection(m.id);
        });
        ws.on('error', () => {});
        ws.once('close', (code: number) => {
          control = undefined;
          retry(
            new WsviaError(
              'WEBSOCKET_CLOSED',
              `the reverse tunnel's control connection closed (code ${code})`,
              {
                hop: 'websocket',
              },
            ),
          );
        });
      },
      (e: unknown) =>
        retry(
          isWsviaError(e)
            ? (explainRefusal(e) as WsviaError)
            : new WsviaError('CONNECTION_RESET', String(e), { hop: 'tcp', cause: e }),
        ),
    );
  };
  attempt();

  return {
    finished,
    close: () =>
      new Promise<void>((resolve) => {
        stopped = true;
        clearTimeout(timer);
        finish();
        const ws = control;
        if (!ws || ws.readyState === ws.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.close(1000);
      }),
  };
}
