/**
 * What happens once a WebSocket is upgraded through the gateway, whichever HTTP version the client spoke:
 * the relay with the configured pings and timeouts, its metrics, and its access log line when it ends.
 */
import type { Duplex } from 'node:stream';
import type { CloseCause } from '../observe/access-log.js';
import type { Keepalive } from './config.js';
import type { Runtime } from './runtime.js';
import { NativeWsRelay, nativeRelayable } from './native-ws-relay.js';
import { WsRelay, type OpenWebSocket, type RelayEnd, type RelayHooks, type Side } from './ws-relay.js';

/** The access log's `target` for the gateway: the upstream the request went to, and its path (never the query). */
export function logTarget(upstream: string | undefined, requestTarget: string): string {
  const path = requestTarget.split('?')[0] ?? '';
  return upstream === undefined ? path : `${upstream.replace(/\/$/, '')}${path}`;
}

const CAUSES = {
  dead_client: 'client_ping_timeout',
  dead_upstream: 'upstream_ping_timeout',
  client_reset: 'client_reset',
  upstream_reset: 'upstream_reset',
  client_lost: 'client_lost',
  upstream_lost: 'upstream_lost',
  idle: 'idle_timeout',
  lifetime: 'max_lifetime',
  drain: 'drain',
  protocol: 'protocol_error',
} as const satisfies Record<NonNullable<RelayEnd['reason']>, CloseCause>;

/** The access log's `close` for a WebSocket: why it ended, else who sent the first close frame. */
function closeCause(end: RelayEnd): CloseCause {
  if (end.reason !== null) return CAUSES[end.reason];
  return end.closedBy === 'gateway' ? 'server_closed' : `${end.closedBy}_closed`;
}

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
 * Counts the upgrade, starts the relay between `client` and `upstream` with the route's keepalive (native under
 * `relay: native|auto` for plain TCP both sides and a route without ping, else JavaScript), and logs it when it
 * ends. The relay resumes both streams' reads.
 */
export function startWebSocketSession(
  rt: Runtime,
  keepalive: Keepalive,
  client: Duplex,
  upstream: Duplex,
  info: SessionInfo,
  leftover: { fromUpstream: Uint8Array; fromClient: Uint8Array },
): OpenWebSocket {
  const m = rt.metrics;
  m.upgradeSeconds.observe((Date.now() - info.started) / 1000);
  m.wsOpen.inc({ route: info.route });
  m.wsTotal.inc({ route: info.route });
  const session = new WebSocketSession(rt, info);
  const native =
    rt.snapshot().config.relay !== 'js' && keepalive.ping === 0 && nativeRelayable(client, upstream);
  if (native) {
    const relay = new NativeWsRelay(client, upstream as typeof client, keepalive, session);
    session.relay = relay;
    rt.track(relay);
    relay.start(leftover.fromUpstream, leftover.fromClient);
    return relay;
  }
  const relay = new WsRelay(client, upstream, keepalive, session);
  session.relay = relay;
  rt.track(relay);
  relay.start(leftover.fromUpstream, leftover.fromClient);
  // An HTTP/2 stream flows once the relay listens to it; an HTTP/1.1 socket was paused after its request head.
  if (info.http !== '2') client.resume();
  upstream.resume();
  return relay;
}

/** The relay's hooks for one WebSocket: one object, no closures kept for the WebSocket's life. */
class WebSocketSession implements RelayHooks {
  readonly #rt: Runtime;
  readonly #info: SessionInfo;
  relay: OpenWebSocket | undefined;

  constructor(rt: Runtime, info: SessionInfo) {
    this.#rt = rt;
    this.#info = info;
  }

  onDead(side: Side): void {
    this.#rt.metrics.pingsMissed.inc({ side });
    this.#rt.metrics.deadReaped.inc({ side });
  }

  onEnd(end: RelayEnd): void {
    const rt = this.#rt;
    const info = this.#info;
    const m = rt.metrics;
    if (this.relay) rt.untrack(this.relay);
    m.wsOpen.dec({ route: info.route });
    m.bytes.inc({ direction: 'upstream' }, end.bytesToUpstream);
    m.bytes.inc({ direction: 'client' }, end.bytesToClient);
    rt.log.write({
      client: info.client,
      user: null,
      method: info.http ? 'CONNECT' : 'GET',
      target: logTarget(info.upstream, info.path),
      status: info.status,
      bytes_up: end.bytesToUpstream,
      bytes_down: end.bytesToClient,
      duration_ms: end.durationMs,
      close: closeCause(end),
      close_code: end.closeCode,
      error: null,
    });
  }
}
