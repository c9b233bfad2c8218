/**
 * Keepalive pings (RFC 6455 §5.5.2): idle intermediaries (nginx's 60 s proxy_read_timeout, cloud load balancers)
 * see traffic, and a dead peer is found instead of waited on forever. A pong missed by its deadline ends the
 * connection; the reason is kept on the socket for whoever reports the close.
 */
import type WebSocket from 'ws';
import { WsviaError } from '../errors.js';
import type { Tracer } from '../observe/trace.js';

/** Keepalive pings: how often, and how long to wait for each pong. */
export interface PingOptions {
  /** Milliseconds between pings. */
  readonly interval: number;
  /** Milliseconds to wait for the pong (default: the interval). */
  readonly timeout?: number;
}

const DEAD = Symbol('wsvia.deadReason');

/** Why wsvia ended this WebSocket, when it did (a missed pong). */
export function closeReason(ws: WebSocket): WsviaError | undefined {
  return (ws as unknown as { [DEAD]?: WsviaError })[DEAD];
}

/** Starts pinging; stops by itself when the socket closes. Returns a function that stops it earlier. */
export function startKeepalive(ws: WebSocket, options: PingOptions, tracer?: Tracer): () => void {
  const timeout = options.timeout ?? options.interval;
  let deadline: NodeJS.Timeout | undefined;
  const onPong = (): void => {
    clearTimeout(deadline);
    deadline = undefined;
  };
  const tick = (): void => {
    if (ws.readyState !== ws.OPEN || deadline) return;
    ws.ping();
    tracer?.emit({ type: 'note', text: 'ping sent', ms: tracer.elapsed() });
    deadline = setTimeout(() => {
      const err = new WsviaError(
        'PING_TIMEOUT',
        `no pong within ${timeout} ms of a ping: the connection is dead`,
        {
          hop: 'websocket',
          hint: 'the peer or something in between stopped forwarding; reconnect (--reconnect) to recover',
        },
      );
      Object.defineProperty(ws, DEAD, { value: err, enumerable: false, configurable: true });
      if (ws.listenerCount('error') > 0) ws.emit('error', err);
      ws.terminate();
    }, timeout);
  };
  const interval = setInterval(tick, options.interval);
  const stop = (): void => {
    clearInterval(interval);
    clearTimeout(deadline);
    ws.removeListener('pong', onPong);
  };
  ws.on('pong', onPong);
  ws.once('close', stop);
  return stop;
}
