/**
 * The gateway's WebSocket relay in native code (issue 15): native carries the steady state, JavaScript handles every
 * event. A WebSocket starts in the JavaScript {@link WsRelay} and moves at its first bytes or 10 ms after its 101
 * (one opened and closed at once is never handed over). Two plain TCP sockets go to the addon (serve/splice-relay.ts), which follows the frame headers both ways,
 * splices big payloads and copies small frames through a buffer that exists only while bytes are in flight, and
 * hands the connection back at the first event it does not handle: a control frame (close, ping, pong), a FIN, reset
 * or error, a broken frame header, or a release() asked for here (idle timeout, max lifetime, drain, shutdown).
 *
 * At the handback the fds become net.Sockets again and the JavaScript {@link WsRelay} continues from the native
 * scanner's state with the bytes read and not yet written, the byte counts and the start time carried on: from
 * there the WebSocket ends exactly as one relayed in JavaScript throughout (close codes, 1001 on drain, 1011 to the
 * side still there, the access log line). After a ping, pong or close handback, once that frame has gone by and
 * nothing is pending (WsRelay.suspend), the native relay takes the WebSocket again.
 *
 * Idle timeout and max lifetime are checked by one shared sweep over the natively relayed WebSockets (their byte
 * counts), never a timer per connection.
 *
 * While the addon holds it, an idle WebSocket keeps no socket object in JavaScript: the accepted and dialed
 * net.Sockets are destroyed at the first handover and their `close` listeners run then (the gateway forgets the
 * socket, the connection object goes with it), after the two duties that last as long as the connection are taken
 * off them: the admission slot and the upstream's open count. Those go on the sockets made at each handback, and
 * are given back when one of those closes: when the connection really does, once.
 */
import net from 'node:net';
import os from 'node:os';
import { releaseOnClose, takeHeldSlot, type AdmissionSlot } from '../serve/admission.js';
import {
  fdOf,
  restartReads,
  spliceable,
  spliceSupport,
  stopReads,
  wsRelayAddon,
  type WsHandback,
} from '../serve/splice-relay.js';
import type { GatewayRelayChoice } from './config.js';
import { countUntilClose, takeOpenCount, type UpstreamState } from './upstream-pool.js';
import {
  WsRelay,
  type OpenWebSocket,
  type RelayHooks,
  type RelayResume,
  type RelayTimers,
} from './ws-relay.js';

type Close = Parameters<OpenWebSocket['close']>;
type Listener = (...args: unknown[]) => void;

/** An errno from the addon as the error a socket would have emitted (`ECONNRESET`...). */
function errnoError(errno: number): Error {
  const code = Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? 'EIO';
  return Object.assign(new Error(`read ${code}`), { code, errno: -errno });
}

function ignore(): void {}

const EMPTY = Buffer.alloc(0);

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

/**
 * How long a WebSocket stays with the JavaScript relay after its 101 unless bytes flow first. A WebSocket opened
 * and closed at once never pays the handover and the handback (two dups, two epoll registrations, four sockets
 * destroyed or made: about 150 µs of CPU, more than its whole setup in JavaScript; bench/NOTES.md, issue 15).
 * Short, because what the first sockets hold is garbage after the handover: kept 100 ms, it outlived young-space
 * collections and stayed in the old space, 3.7 KiB more RSS per idle WebSocket until a full collection.
 */
export const HANDOVER_AFTER_MS = 10;

/** WebSockets still relayed in JavaScript since their 101, oldest first: moved to the native relay by one timer. */
class YoungRelays {
  readonly #since = new Map<NativeWsRelay, number>();
  #timer: NodeJS.Timeout | undefined;

  add(r: NativeWsRelay): void {
    this.#since.set(r, Date.now());
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), HANDOVER_AFTER_MS / 2);
    this.#timer.unref();
  }

  delete(r: NativeWsRelay): void {
    this.#since.delete(r);
  }

  #tick(): void {
    const now = Date.now();
    for (const [r, since] of this.#since) {
      if (now - since < HANDOVER_AFTER_MS) break;
      this.#since.delete(r);
      r.moveToNative();
    }
    if (this.#since.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

const young = new YoungRelays();

/** Pairs per slab: 8 KiB of counts. */
const PAIRS_PER_SLAB = 512;

/**
 * The byte-count pairs the relay thread keeps current, views of shared slabs: a Float64Array(2) of its own would
 * be allocated in V8's heap and given an ArrayBuffer and a backing store of its own when the addon asks for its
 * memory, about 200 bytes per WebSocket. A pair is taken at a handover and given back at the handback.
 */
class CountPairs {
  readonly #slabs: Float64Array[] = [];
  readonly #free: number[] = [];
  #next = 0;

  take(): { at: number; pair: Float64Array } {
    const at = this.#free.pop() ?? this.#next++;
    const slab = (this.#slabs[Math.floor(at / PAIRS_PER_SLAB)] ??= new Float64Array(2 * PAIRS_PER_SLAB));
    const from = 2 * (at % PAIRS_PER_SLAB);
    return { at, pair: slab.subarray(from, from + 2) };
  }

  give(at: number): void {
    this.#free.push(at);
  }
}

const countPairs = new CountPairs();
const NO_COUNTS = new Float64Array(2);

/** Which relay the gateway's WebSockets get under `choice`, and why (the startup line says both). */
export function gatewayRelayDecision(choice: GatewayRelayChoice): {
  readonly relay: 'js' | 'native';
  readonly why: string;
} {
  if (choice === 'js') return { relay: 'js', why: '--relay js' };
  const s = spliceSupport();
  if (!s.available) return { relay: 'js', why: s.reason };
  if (wsRelayAddon() === undefined)
    return { relay: 'js', why: `the native relay in ${s.from} has no WebSocket relay` };
  return {
    relay: 'native',
    why: `frame headers scanned natively, payloads spliced, ${s.from}; TLS sides and ping routes: JavaScript`,
  };
}

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

/** The events {@link WsRelay} listens to on its sockets ('close' apart: others listen to it too). */
const RELAY_EVENTS = ['data', 'drain', 'end', 'error', 'timeout'] as const;

/**
 * A WebSocket relayed natively until an event, then by a {@link WsRelay} until it ends or nothing is pending any
 * more (a ping and its pong went by), when the native relay takes it again. Start it with
 * {@link NativeWsRelay.start}; `close` and `destroy` act at once when in JavaScript, after the handback otherwise.
 */
export class NativeWsRelay implements OpenWebSocket {
  /**
   * The sockets now: the accepted and dialed ones, then those made at each handback; none while the addon relays
   * (the fds are its own then).
   */
  #client: net.Socket | undefined;
  #upstream: net.Socket | undefined;
  readonly #timers: RelayTimers;
  readonly #hooks: RelayHooks;
  readonly #started = Date.now();
  /** Bytes written a -> b (client to upstream) and b -> a since the last handover, kept current by the thread. */
  #counts: Float64Array = NO_COUNTS;
  /** Which pair of {@link countPairs} #counts is, while the addon has it. */
  #countsAt = -1;
  #id = -1;
  #js: WsRelay | undefined;
  /** What to do once the native relay has handed the connection back. */
  #then: { close: Close } | 'destroy' | undefined;
  /** The duties taken off the first sockets at the first handover, put on the sockets of every handback. */
  #slot: AdmissionSlot | undefined;
  #counted: UpstreamState | undefined;
  #carried = false;
  /** Bytes relayed before the last handover, client to upstream and back. */
  #baseUp = 0;
  #baseDown = 0;
  #lastBytes = -1;
  #lastActive = Date.now();
  #reentryDue = false;
  /** Made when the WebSocket may go (back) to the native relay at its next bytes. */
  #kick: (() => void) | undefined;
  /**
   * The first sockets' `close` listeners before the JavaScript relay added its own, until the first handover: they
   * run when those sockets are destroyed then (see the header), the relay's do not.
   */
  #firstClose: Listener[][] | undefined;

  constructor(client: net.Socket, upstream: net.Socket, timers: RelayTimers, hooks: RelayHooks) {
    this.#client = client;
    this.#upstream = upstream;
    this.#timers = timers;
    this.#hooks = hooks;
  }

  /**
   * Starts relaying in JavaScript (the bytes that followed the handshakes go on first) and hands the sockets to
   * the native relay at the first bytes either way or {@link HANDOVER_AFTER_MS} after the 101, whichever comes
   * first, once nothing is pending (a control frame or a write still in flight keeps it in JavaScript until then).
   */
  start(fromUpstream: Uint8Array, fromClient: Uint8Array): void {
    const c = this.#client as net.Socket;
    const u = this.#upstream as net.Socket;
    const native = wsRelayAddon() !== undefined && spliceable(c) && spliceable(u);
    if (native) this.#firstClose = [c, u].map((s) => s.rawListeners('close') as Listener[]);
    this.#inJs(Buffer.from(fromUpstream), Buffer.from(fromClient));
    if (!native) return;
    this.#kickOnEvents(c, u);
    young.add(this);
  }

  /** @internal by {@link YoungRelays}: the WebSocket is old enough for the native relay. */
  moveToNative(): void {
    this.#reenter();
  }

  /**
   * Tries the native relay again after the next bytes either way, and after a drain: a write still in flight keeps
   * the WebSocket in JavaScript, and a drain is when none is.
   */
  #kickOnEvents(c: net.Socket, u: net.Socket): void {
    const kick = (this.#kick ??= () => this.#kickSoon());
    for (const s of [c, u]) {
      s.on('data', kick);
      s.on('drain', kick);
    }
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

  /**
   * Gives the current sockets (reads stopped, nothing buffered either way) to the addon, the scanners `up` and
   * `down` payload bytes before their next header; stays in JavaScript if a write is still pending or the addon
   * refuses them.
   */
  #handOver(up: number, down: number): void {
    const c = this.#client as net.Socket;
    const u = this.#upstream as net.Socket;
    const addon = wsRelayAddon();
    const pending = c.writableLength > 0 || u.writableLength > 0;
    try {
      if (addon === undefined || pending) throw new Error('not now');
      const { at, pair } = countPairs.take();
      this.#countsAt = at;
      this.#counts = pair;
      this.#id = addon.wsRelay(fdOf(c), fdOf(u), Float64Array.of(up, down), pair, (h) => this.#back(h));
    } catch {
      this.#giveCounts();
      // After a re-entry these are sockets made at a handback, their `close` listeners removed: the duties go back.
      if (this.#carried) this.#putDuties(c, u);
      for (const s of [c, u]) restartReads(s);
      return this.#inJs(EMPTY, EMPTY, this.#resume({ up, down, dataAtoB: EMPTY, dataBtoA: EMPTY }));
    }
    this.#js = undefined;
    this.#client = undefined;
    this.#upstream = undefined;
    young.delete(this);
    this.#firstClose = undefined;
    if (!this.#carried) {
      this.#carried = true;
      this.#slot = takeHeldSlot(c);
      this.#counted = takeOpenCount(u);
    }
    for (const s of [c, u]) {
      // Closing our handle closes one of two fds for the connection: no FIN, no RST. Its `close` listeners run
      // (a re-entry removed the relay's first): what they held is let go, the duties above live on.
      s.on('error', ignore);
      s.destroy();
    }
    sweep.add(this, this.#timers);
  }

  /**
   * The carried duties on the sockets of a handback, before the relay's own `close` listeners (as on the first
   * sockets): the slot is free when the log line is written.
   */
  #putDuties(c: net.Socket, u: net.Socket): void {
    if (this.#slot !== undefined) releaseOnClose(c, this.#slot);
    if (this.#counted !== undefined) countUntilClose(this.#counted, u);
  }

  /** The count pair back to the slabs: the addon no longer writes it (refused, or handed back). */
  #giveCounts(): void {
    if (this.#countsAt >= 0) countPairs.give(this.#countsAt);
    this.#countsAt = -1;
    this.#counts = NO_COUNTS;
  }

  #inJs(fromUpstream: Buffer, fromClient: Buffer, resume?: RelayResume): void {
    const c = this.#client as net.Socket;
    const u = this.#upstream as net.Socket;
    const relay = new WsRelay(c, u, this.#timers, this.#hooks, resume);
    this.#js = relay;
    relay.start(fromUpstream, fromClient);
    c.resume();
    u.resume();
  }

  /** Where the JavaScript relay continues: the native scanners' state, the byte counts so far. */
  #resume(h: {
    up: number;
    down: number;
    dataAtoB: Buffer;
    dataBtoA: Buffer;
    scannedAtoB?: number;
    scannedBtoA?: number;
    bytesAtoB?: number;
    bytesBtoA?: number;
  }): RelayResume {
    return {
      started: this.#started,
      bytesToUpstream: this.#baseUp + (h.bytesAtoB ?? 0),
      bytesToClient: this.#baseDown + (h.bytesBtoA ?? 0),
      toUpstream: { scanned: h.dataAtoB.subarray(0, h.scannedAtoB ?? 0), remaining: h.up },
      toClient: { scanned: h.dataBtoA.subarray(0, h.scannedBtoA ?? 0), remaining: h.down },
    };
  }

  /** The native relay gave the connection back: the JavaScript relay continues where it stopped. */
  #back(h: WsHandback): void {
    sweep.delete(this);
    this.#giveCounts();
    const [c, u] = [h.fdA, h.fdB].map((fd) => {
      const s = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: false });
      s.setNoDelay(true);
      return s;
    }) as [net.Socket, net.Socket];
    this.#putDuties(c, u);
    this.#client = c;
    this.#upstream = u;
    const relay = new WsRelay(
      c,
      u,
      this.#timers,
      this.#hooks,
      this.#resume({ ...h, up: h.remainingAtoB, down: h.remainingBtoA }),
    );
    this.#js = relay;
    relay.start(h.dataBtoA.subarray(h.scannedBtoA), h.dataAtoB.subarray(h.scannedAtoB));
    // An error a syscall in the addon already returned is not seen again by Node: it is passed on as it came.
    if (h.errA !== 0) c.destroy(errnoError(h.errA));
    if (h.errB !== 0) u.destroy(errnoError(h.errB));
    const then = this.#then;
    if (then === 'destroy') relay.destroy();
    else if (then !== undefined) relay.close(...then.close);
    else if (h.why === 'control') {
      // A ping, a pong or a close: once it has gone by and nothing is pending, the native relay takes it again.
      this.#kickOnEvents(c, u);
      this.#kickSoon();
    }
  }

  #kickSoon(): void {
    if (this.#reentryDue) return;
    this.#reentryDue = true;
    setImmediate(() => {
      this.#reentryDue = false;
      this.#reenter();
    });
  }

  /** Back to the native relay when the JavaScript relay has nothing pending (see WsRelay.suspend). */
  #reenter(): void {
    const js = this.#js;
    const c = this.#client;
    const u = this.#upstream;
    if (js === undefined || c === undefined || u === undefined) return;
    if (this.#then !== undefined || !spliceable(c) || !spliceable(u)) return;
    if (c.readableLength > 0 || u.readableLength > 0 || c.writableLength > 0 || u.writableLength > 0) return;
    const at = js.suspend();
    if (at === undefined) return;
    this.#baseUp = js.bytesToUpstream;
    this.#baseDown = js.bytesToClient;
    const first = this.#firstClose;
    [c, u].forEach((s, i) => {
      stopReads(s);
      for (const e of RELAY_EVENTS) s.removeAllListeners(e);
      s.setTimeout(0);
      // The relay's and the carried duties' listeners: the connection does not end with these socket objects.
      s.removeAllListeners('close');
      // The first sockets keep theirs (the slot, the gateway's socket set...): the first handover runs them.
      for (const l of first?.[i] ?? []) s.on('close', l);
    });
    this.#handOver(at.toUpstream, at.toClient);
  }
}
