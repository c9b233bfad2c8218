/**
 * The gateway's WebSocket relay in native code (issue 15): native carries the steady state, JavaScript handles every
 * event. Two plain TCP sockets go to the addon (serve/splice-relay.ts), which follows the frame headers both ways,
 * splices big payloads and copies small frames through a buffer that exists only while bytes are in flight, and
 * hands the connection back at the first event it does not handle: a control frame (close, ping, pong), a FIN, reset
 * or error, a broken frame header, or a release() asked for here (idle timeout, max lifetime, drain, shutdown).
 *
 * At the handback the fds become net.Sockets again and the JavaScript {@link WsRelay} continues from the native
 * scanner's state with the bytes read and not yet written, the byte counts and the start time carried on: from
 * there the WebSocket ends exactly as one relayed in JavaScript throughout (close codes, 1001 on drain, 1011 to the
 * side still there, the access log line). It stays in JavaScript until it ends.
 *
 * Idle timeout and max lifetime are checked by one shared sweep over the natively relayed WebSockets (their byte
 * counts), never a timer per connection; the sockets' `close` listeners (the admission slot) move to the sockets
 * made at the handback, so they run when the connection really closes.
 */
import net from 'node:net';
import os from 'node:os';
import {
  fdOf,
  restartReads,
  spliceable,
  stopReads,
  wsRelayAddon,
  type WsHandback,
} from '../serve/splice-relay.js';
import { WsRelay, type OpenWebSocket, type RelayHooks, type RelayTimers } from './ws-relay.js';

type Listener = (...args: unknown[]) => void;
type Close = Parameters<OpenWebSocket['close']>;

/** An errno from the addon as the error a socket would have emitted (`ECONNRESET`...). */
function errnoError(errno: number): Error {
  const code = Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? 'EIO';
  return Object.assign(new Error(`read ${code}`), { code, errno: -errno });
}

function ignore(): void {}

/** The natively relayed WebSockets with an idle timeout or a max lifetime, swept together. */
class NativeSweep {
  readonly #relays = new Set<NativeWsRelay>();
  #timer: NodeJS.Timeout | undefined;
  #every = Infinity;

  add(r: NativeWsRelay, timers: RelayTimers): void {
    const limits = [timers.idleTimeout, timers.maxLifetime].filter((x) => x > 0);
    if (limits.length === 0) return;
    this.#relays.add(r);
    // Cut within a quarter of its limit past it; at most one wake-up a second, at least every 50 ms.
    const every = Math.max(50, Math.min(1000, Math.min(...limits) / 4));
    if (every < this.#every) {
      clearInterval(this.#timer);
      this.#every = every;
      this.#timer = setInterval(() => this.#sweep(), every);
      this.#timer.unref();
    }
  }

  delete(r: NativeWsRelay): void {
    if (!this.#relays.delete(r) || this.#relays.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#every = Infinity;
  }

  #sweep(): void {
    const now = Date.now();
    for (const r of this.#relays) r.sweep(now);
  }
}

const sweep = new NativeSweep();

/** Whether `client` and `upstream` can go to the native relay now: both plain TCP, the addon loaded. */
export function nativeRelayable(client: unknown, upstream: unknown): client is net.Socket {
  return (
    wsRelayAddon() !== undefined &&
    client instanceof net.Socket &&
    upstream instanceof net.Socket &&
    spliceable(client) &&
    spliceable(upstream)
  );
}

/**
 * A WebSocket relayed natively until its first event, then by a {@link WsRelay}. Start it with
 * {@link NativeWsRelay.start}; `close` and `destroy` act at once when in JavaScript, after the handback otherwise.
 */
export class NativeWsRelay implements OpenWebSocket {
  readonly #client: net.Socket;
  readonly #upstream: net.Socket;
  readonly #timers: RelayTimers;
  readonly #hooks: RelayHooks;
  readonly #started = Date.now();
  /** Bytes written a -> b (client to upstream) and b -> a, kept current by the relay thread. */
  readonly #counts = new Float64Array(2);
  #id = -1;
  #js: WsRelay | undefined;
  /** What to do once the native relay has handed the connection back. */
  #then: { close: Close } | 'destroy' | undefined;
  #closeListeners: Listener[][] = [];
  #lastBytes = -1;
  #lastActive = Date.now();

  constructor(client: net.Socket, upstream: net.Socket, timers: RelayTimers, hooks: RelayHooks) {
    this.#client = client;
    this.#upstream = upstream;
    this.#timers = timers;
    this.#hooks = hooks;
  }

  /**
   * Hands the sockets to the native relay; bytes that followed the handshakes (or that Node had read already) and
   * writes still pending keep the WebSocket in JavaScript instead.
   */
  start(fromUpstream: Uint8Array, fromClient: Uint8Array): void {
    const c = this.#client;
    const u = this.#upstream;
    const addon = wsRelayAddon();
    const quiet =
      fromUpstream.length === 0 &&
      fromClient.length === 0 &&
      c.readableLength === 0 &&
      u.readableLength === 0 &&
      c.writableLength === 0 &&
      u.writableLength === 0;
    if (addon === undefined || !quiet || !spliceable(c) || !spliceable(u)) {
      return this.#inJs(c, u, Buffer.from(fromUpstream), Buffer.from(fromClient));
    }
    const early = [stopReads(u), stopReads(c)] as const;
    if (early[0].length + early[1].length > 0) {
      // Nothing was buffered a moment ago, so nothing can have been read since; should it, stay in JavaScript.
      for (const s of [c, u]) restartReads(s);
      return this.#inJs(c, u, Buffer.concat(early[0]), Buffer.concat(early[1]));
    }
    try {
      this.#id = addon.wsRelay(fdOf(c), fdOf(u), new Float64Array(2), this.#counts, (h) =>
        this.#back(h),
      );
    } catch {
      for (const s of [c, u]) restartReads(s);
      return this.#inJs(c, u, Buffer.alloc(0), Buffer.alloc(0));
    }
    this.#closeListeners = [c, u].map((s) => {
      const listeners = s.rawListeners('close') as Listener[];
      s.removeAllListeners('close');
      // Closing our handle closes one of two fds for the connection: no FIN, no RST.
      s.on('error', ignore);
      s.destroy();
      return listeners;
    });
    sweep.add(this, this.#timers);
  }

  /** True while the addon relays it. */
  get native(): boolean {
    return this.#id >= 0 && this.#js === undefined;
  }

  close(...args: Close): void {
    if (this.#js) return this.#js.close(...args);
    if (this.#then === undefined) this.#then = { close: args };
    this.#release();
  }

  destroy(): void {
    if (this.#js) return this.#js.destroy();
    this.#then = 'destroy';
    this.#release();
  }

  /** @internal by the shared sweep: closes it past its lifetime, or when no byte moved for the idle timeout. */
  sweep(now: number): void {
    const t = this.#timers;
    if (t.maxLifetime > 0 && now - this.#started >= t.maxLifetime)
      return this.close(1001, 'max lifetime', 'lifetime');
    const bytes = (this.#counts[0] ?? 0) + (this.#counts[1] ?? 0);
    if (bytes !== this.#lastBytes) {
      this.#lastBytes = bytes;
      this.#lastActive = now;
    } else if (t.idleTimeout > 0 && now - this.#lastActive >= t.idleTimeout)
      this.close(1001, 'idle timeout', 'idle');
  }

  #release(): void {
    if (this.#id >= 0) wsRelayAddon()?.release(this.#id);
  }

  #inJs(c: net.Socket, u: net.Socket, fromUpstream: Buffer, fromClient: Buffer): void {
    const relay = new WsRelay(c, u, this.#timers, this.#hooks);
    this.#js = relay;
    relay.start(fromUpstream, fromClient);
    c.resume();
    u.resume();
  }

  /** The native relay gave the connection back: the JavaScript relay continues where it stopped. */
  #back(h: WsHandback): void {
    sweep.delete(this);
    const [c, u] = [h.fdA, h.fdB].map((fd, i) => {
      const s = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: false });
      s.setNoDelay(true);
      for (const l of this.#closeListeners[i] ?? []) s.on('close', l);
      return s;
    }) as [net.Socket, net.Socket];
    this.#closeListeners = [];
    const relay = new WsRelay(c, u, this.#timers, this.#hooks, {
      started: this.#started,
      bytesToUpstream: h.bytesAtoB,
      bytesToClient: h.bytesBtoA,
      toUpstream: { scanned: h.dataAtoB.subarray(0, h.scannedAtoB), remaining: h.remainingAtoB },
      toClient: { scanned: h.dataBtoA.subarray(0, h.scannedBtoA), remaining: h.remainingBtoA },
    });
    this.#js = relay;
    relay.start(h.dataBtoA.subarray(h.scannedBtoA), h.dataAtoB.subarray(h.scannedAtoB));
    // An error a syscall in the addon already returned is not seen again by Node: it is passed on as it came.
    if (h.errA !== 0) c.destroy(errnoError(h.errA));
    if (h.errB !== 0) u.destroy(errnoError(h.errB));
    const then = this.#then;
    if (then === 'destroy') relay.destroy();
    else if (then !== undefined) relay.close(...then.close);
  }
}
