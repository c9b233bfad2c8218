/**
 * What happens once a WebSocket is upgraded through the gateway, whichever HTTP version the client spoke:
 * the relay with the configured pings and timeouts, its metrics, and its access log line when it ends.
 */
import type { Duplex } from 'node:stream';
import type { Keepalive } from './config.js';
import type { Runtime } from './runtime.js';
import { WsRelay } from './ws-relay.js';

/**
 * Browsers always send Origin with a WebSocket handshake (RFC 6455 §10.2); clients without one are not
 * browsers, so cross-site WebSocket hijacking does not apply to them.
 */
export function originAllowed(allowed: readonly string[], origin: string | undefined): boolean {
  return (
    origin === undefined ||
    allowed.length === 0 ||
    allowed.some((a) => a === '*' || a.toLowerCase() === origin.toLowerCase())
  );
}

/** Only what the access log needs, so the request head is not kept for the WebSocket's life. */
export interface SessionInfo {
  /** `'2'` for RFC 8441 (extended CONNECT); absent for HTTP/1.1. */
  readonly http?: '2';
  readonly client: string;
  readonly route: string;
  readonly upstream: string;
  /** The request path without its query. */
  readonly path: string;
  /** What the client was answered: 101 over HTTP/1.1, 200 over HTTP/2. */
  readonly status: number;
  /** When the request arrived (Date.now()), for the upgrade-time histogram. */
  readonly started: number;
}

/**
 * Counts the upgrade, starts the relay between `client` and `upstream` with the route's keepalive, and logs it
 * when it ends.
 */
export function startWebSocketSession(
  rt: Runtime,
  keepalive: Keepalive,
  client: Duplex,
  upstream: Duplex,
  info: SessionInfo,
  leftover: { fromUpstream: Uint8Array; fromClient: Uint8Array },
): WsRelay {
  const m = rt.metrics;
  m.upgradeSeconds.observe((Date.now() - info.started) / 1000);
  m.wsOpen.inc({ route: info.route });
  m.wsTotal.inc({ route: info.route });
  let untrack = (): void => {};
  const relay = new WsRelay(client, upstream, keepalive, {
    onDead: (side) => {
      m.pingsMissed.inc({ side });
      m.deadReaped.inc({ side });
    },
    onEnd: (end) => {
      untrack();
      m.wsOpen.dec({ route: info.route });
      m.bytes.inc({ direction: 'upstream' }, end.bytesToUpstream);
      m.bytes.inc({ direction: 'client' }, end.bytesToClient);
      rt.log.write({
        kind: 'websocket',
        ...(info.http ? { http: info.http } : {}),
        client: info.client,
        route: info.route,
        upstream: info.upstream,
        path: info.path,
        status: info.status,
        bytesToUpstream: end.bytesToUpstream,
        bytesToClient: end.bytesToClient,
        durationMs: end.durationMs,
        closedBy: end.closedBy,
        closeCode: end.closeCode,
        reason: end.reason,
      });
    },
  });
  untrack = rt.track(relay);
  relay.start(leftover.fromUpstream, leftover.fromClient);
  return relay;
}
