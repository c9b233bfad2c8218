/**
 * One bridged session, from the 101 to its one access-log line: the pump between the WebSocket and the TCP
 * target, the recording, the keepalive, and the admission slot it holds until both sides are closed. However the
 * session ends (either peer, an error, a ping timeout, the bridge's drain), it ends in exactly one log line and
 * gives its slot back once.
 */
import type net from 'node:net';
import type { AccessLog, CloseCause } from '../observe/access-log.js';
import type { CloseReason } from '../serve/relay.js';
import type { AdmissionSlot } from '../serve/admission.js';
import type { BridgeMetrics } from './metrics.js';
import { pump, type ClosedBy, type PumpResult } from './pump.js';
import { SessionRecorder } from './recorder.js';
import type { WebSocketByteStream } from './ws-stream.js';

export interface SessionSetup {
  readonly clientName: string;
  /** `host:port`, or `reverse:PORT`. */
  readonly target: string;
  readonly kind: string;
  readonly path: string;
  readonly record: string | undefined;
}

/** The pump's socket is the relay's client side; in the access log the bridge's TCP target is the upstream. */
const CAUSES = {
  client_closed: 'upstream_closed',
  upstream_closed: 'client_closed',
  client_reset: 'upstream_reset',
  upstream_reset: 'client_reset',
  idle_timeout: 'idle_timeout',
  max_lifetime: 'max_lifetime',
  drain: 'drain',
  server_closed: 'server_closed',
} as const satisfies Record<CloseReason, CloseCause>;

function whoClosed(c: ClosedBy): string {
  return c === 'websocket' ? 'client' : c === 'socket' ? 'target' : c;
}

export class BridgeSession {
  readonly #ws: WebSocketByteStream;
  readonly #setup: SessionSetup;
  readonly #log: AccessLog;
  readonly #metrics: BridgeMetrics;
  readonly #recorder: SessionRecorder | undefined;
  readonly #opened = performance.now();
  #drained = false;
  /** Settles once the session is over and logged. */
  readonly done: Promise<void>;

  constructor(
    ws: WebSocketByteStream,
    tcp: net.Socket,
    slot: AdmissionSlot,
    ctx: { setup: SessionSetup; log: AccessLog; metrics: BridgeMetrics },
  ) {
    this.#ws = ws;
    this.#setup = ctx.setup;
    this.#log = ctx.log;
    this.#metrics = ctx.metrics;
    const s = ctx.setup;
    this.#recorder =
      s.record === undefined
        ? undefined
        : new SessionRecorder(s.record, { client: s.clientName, target: s.target, path: s.path });
    const recorder = this.#recorder;
    const pumped = pump(tcp, ws, {
      ...(recorder
        ? { onData: (from, bytes) => recorder.data(from === 'websocket' ? 'up' : 'down', bytes) }
        : {}),
    });
    tcp.resume();
    this.done = pumped
      .then((r) => {
        slot.close();
        return this.#ended(r);
      })
      .catch(() => slot.close());
  }

  /** RFC 6455 §7.4.1: 1001, going away; the session's log line says it was the drain that ended it. */
  drain(): void {
    this.#drained = true;
    this.#ws.goAway(1001, 'bridge shutting down').catch(() => {});
  }

  /** Cuts a session whose peer did not answer the drain's close in time. */
  terminate(): void {
    this.#drained = true;
    this.#ws.terminate();
  }

  async #ended(r: PumpResult): Promise<void> {
    const closedBy = this.#drained ? 'drain' : whoClosed(r.closedBy);
    const m = this.#metrics;
    m.bytes.inc({ direction: 'up' }, r.bytesFromWebSocket);
    m.bytes.inc({ direction: 'down' }, r.bytesFromSocket);
    m.closed.inc({ by: closedBy });
    const summary = { closed_by: closedBy, bytes_up: r.bytesFromWebSocket, bytes_down: r.bytesFromSocket };
    this.#log.write({
      client: this.#setup.clientName,
      user: null,
      method: 'GET',
      target: this.#setup.target,
      status: 101,
      bytes_up: r.bytesFromWebSocket,
      bytes_down: r.bytesFromSocket,
      duration_ms: performance.now() - this.#opened,
      close: this.#drained ? 'drain' : CAUSES[r.reason],
      // 1006 is what a WebSocket reports when no close frame came (RFC 6455 §7.1.5).
      close_code: r.wsCloseCode === 1006 ? null : r.wsCloseCode,
      error: null,
    });
    await this.#recorder?.end(summary);
  }
}
