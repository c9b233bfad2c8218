/**
 * The relay for raw byte pairs, shared by every server (the proxy's tunnels, the gateway's SNI passthrough, the
 * bridge's TCP side): bytes between two streams, no re-framing and no copies. Each stream gets the same
 * module-level handlers (bound through `this`, so a tunnel costs no closures): data is written to the peer and
 * reading pauses when the peer's `write()` returns false, resuming on its `drain` (backpressure both ways, so a slow
 * reader never makes the server buffer more than one socket's high-water mark); an `end` is passed on as a
 * half-close; a reset or error on one side resets the other, through {@link resetStream}, whatever the stream's type
 * (TCP, TLS, a WebSocket stream): a truncated stream must never reach the far end as a complete one.
 *
 * Idle and lifetime limits are enforced by one shared sweep over all tunnels ({@link TunnelSet}), never a timer
 * per socket: a tunnel's activity is read from the sockets' own byte counters.
 *
 * Two plain TCP sockets with no bytes to look at (a CONNECT tunnel without recording) can instead be handed to the
 * native zero-copy relay (splice-relay.ts) when the set's relay choice allows it: the same ends, resets, sweeps and
 * byte counts, without the bytes passing through JavaScript.
 *
 * The bridge and the tunnel (a TCP socket and a WebSocket byte stream) use the same relay in its byte-stream mode
 * ({@link ByteStreamMode}): a side that closes cleanly gives the other a bounded time to flush, a stream that
 * closes before its reads ended is a reset, and the bytes are counted as relayed.
 */
import fs from 'node:fs';
import net from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import { endWasReset, resetStream, StreamReset } from './reset.js';
import {
  spliceable,
  SplicedPair,
  spliceSupport,
  restartReads,
  stopReads,
  type RelayChoice,
  type SpliceEnd,
} from './splice-relay.js';

export const CLOSE_REASONS = [
  'client_closed',
  'upstream_closed',
  'client_reset',
  'upstream_reset',
  'idle_timeout',
  'max_lifetime',
  'drain',
  'server_closed',
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

const PEER = Symbol('wsvia.peer');
const TUNNEL = Symbol('wsvia.tunnel');
const IS_CLIENT = Symbol('wsvia.isClient');
const EARLY = Symbol('wsvia.early');
const ERRORED = Symbol('wsvia.errored');
const READ = Symbol('wsvia.read');
const FLUSH = Symbol('wsvia.flush');

/** What a tunnel holds for its sockets once the native relay has them: a stream that was never anything. */
const HANDED_OVER: Duplex = new PassThrough().destroy();

/** With `spliceAfter`, a tunnel open this long moves to the native relay even if it carried little (the sweep's). */
const LONG_LIVED_MS = 2000;

/** The size of a reused read buffer: what Node reads per call by default. */
const READ_SIZE = 64 * 1024;
/** Where sockets without bulk traffic read: small reads are copied out of it, as Node would allocate them. */
const SHARED = Buffer.allocUnsafeSlow(16 * 1024);

interface RelayStream extends Duplex {
  [PEER]: Duplex;
  [TUNNEL]: Tunnel<unknown>;
  [IS_CLIENT]: boolean;
  [EARLY]: Buffer[] | undefined;
  /** An `error` was seen: its `close` is a reset whatever `hadError` says (a plain Duplex's close carries none). */
  [ERRORED]: boolean;
  /** Bytes read since the relay began (the count for streams that keep none of their own: not a net.Socket). */
  [READ]: number;
  /** The timer that resets a stream which did not flush in time after its peer closed (byte-stream mode). */
  [FLUSH]: NodeJS.Timeout | undefined;
}

/** Bytes read from `s` so far: the socket's own counter, or the relay's count for other streams. */
function bytesIn(s: Duplex): number {
  return s instanceof net.Socket ? s.bytesRead : ((s as Partial<RelayStream>)[READ] ?? 0);
}

/** Bytes written to `s` so far; for a stream without a counter, what the relay read from its peer. */
function bytesOut(s: Duplex, peer: Duplex): number {
  return s instanceof net.Socket ? s.bytesWritten : bytesIn(peer);
}

/** The limits the shared sweep enforces, in milliseconds; 0 disables one. */
export interface RelayLimits {
  readonly idleTimeout: number;
  readonly maxLifetime: number;
}

/**
 * How the bridge and the tunnel end a session between a TCP socket and a WebSocket byte stream (issue 12 §1):
 * - once one side has closed cleanly, the other is ended and closed as soon as its writes are flushed, and reset
 *   if they are not within `flushTimeout` ms (a reader that never reads must not hold the session, and its slot,
 *   for ever);
 * - a stream that closes before its reads ended is a reset even without an error (a destroyed stream is a cut,
 *   not an end), and a side that sent its FIN and then reset counts as reset;
 * - the bytes of each direction are what the relay read, from its first byte on.
 * Without it (the proxy, SNI passthrough) a FIN leaves the other side half-open until it closes or the sweep cuts it.
 */
export interface ByteStreamMode {
  readonly flushTimeout: number;
}

/** What one tunnel asks for beyond its two streams. */
export interface OpenOptions {
  /** Sees every chunk relayed, before it is written on (recordings); `fromClient` says its direction. */
  readonly onData?: (fromClient: boolean, chunk: Buffer) => void;
  /**
   * A stream whose end is only a half-close (the `wsvia.tunnel.v1` eof): it does not name who closed the session,
   * the answer may still follow.
   */
  readonly halfCloseOnly?: Duplex;
}

/**
 * One open tunnel (or forwarded exchange): its two streams and what the server will log at the end (`info`).
 * `reason` says what ended it: the first FIN, reset, timeout or drain.
 */
export class Tunnel<I = unknown> {
  readonly info: I;
  /** The sockets, until the native relay takes them: then {@link HANDED_OVER} (nothing keeps them alive here). */
  client: Duplex;
  upstream: Duplex;
  readonly openedAt = Date.now();
  reason: CloseReason | undefined;
  /** A side ended abnormally, or the tunnel was cut: the other side was reset, not every byte was carried. */
  reset = false;
  /** @internal */
  readonly onData: OpenOptions['onData'];
  /** @internal */
  readonly halfCloseOnly: Duplex | undefined;
  /** @internal byte-stream mode, when the set has it */
  readonly byteStream: ByteStreamMode | undefined;
  /**
   * @internal bytes one direction carries on the JavaScript relay before the tunnel moves to the native relay
   * ({@link TunnelSet}'s `spliceAfter`); Infinity: it stays where it is.
   */
  spliceAt = Infinity;
  #closed = 0;
  /** The native relay, once the sockets are handed over; the bytes relayed in JavaScript before that. */
  #spliced: SplicedPair | undefined;
  #splicedBase = [0, 0] as const as readonly [number, number];
  #lastBytes = -1;
  #lastActive = Date.now();
  readonly #set: TunnelSet<I>;
  /** Bytes the client had sent and received before the relay began (its request head, our answer). */
  readonly #baseUp: number;
  readonly #baseDown: number;

  constructor(
    set: TunnelSet<I>,
    pair: { client: Duplex; upstream: Duplex; byteStream: ByteStreamMode | undefined },
    info: I,
    options: OpenOptions,
  ) {
    this.info = info;
    this.#set = set;
    this.client = pair.client;
    this.upstream = pair.upstream;
    this.byteStream = pair.byteStream;
    this.onData = options.onData;
    this.halfCloseOnly = options.halfCloseOnly;
    this.#baseUp = bytesIn(this.client);
    this.#baseDown = bytesOut(this.client, this.upstream);
  }

  /** Bytes relayed from the client to the destination, and back, since the relay began. */
  get bytesUp(): number {
    if (this.#spliced) return this.#splicedBase[0] + (this.#spliced.counts[0] ?? 0);
    if (this.byteStream) return (this.client as RelayStream)[READ];
    return bytesIn(this.client) - this.#baseUp;
  }
  get bytesDown(): number {
    if (this.#spliced) return this.#splicedBase[1] + (this.#spliced.counts[1] ?? 0);
    if (this.byteStream) return (this.upstream as RelayStream)[READ];
    return bytesOut(this.client, this.upstream) - this.#baseDown;
  }

  /**
   * Cuts the tunnel (timeouts, drain). Both sides are reset, not ended: a tunnel cut by the server is not a
   * complete exchange, and a peer must not read it as one (only a peer's own FIN is passed on as a FIN).
   */
  abort(reason: CloseReason): void {
    this.reason ??= reason;
    this.reset = true;
    if (this.#spliced) return this.#spliced.cut();
    resetStream(this.client, new StreamReset(reason));
    resetStream(this.upstream, new StreamReset(reason));
  }

  /** @internal by the shared sweep: cuts the tunnel past its lifetime, or when no byte moved for `idle` ms. */
  sweep(now: number, limits: RelayLimits): void {
    if (limits.maxLifetime > 0 && now - this.openedAt >= limits.maxLifetime)
      return this.abort('max_lifetime');
    const c = this.client;
    const u = this.upstream;
    const bytes = this.#spliced
      ? this.bytesUp + this.bytesDown
      : bytesIn(c) + bytesOut(c, u) + bytesIn(u) + bytesOut(u, c);
    if (bytes !== this.#lastBytes) {
      this.#lastBytes = bytes;
      this.#lastActive = now;
    } else if (limits.idleTimeout > 0 && now - this.#lastActive >= limits.idleTimeout)
      return this.abort('idle_timeout');
    // A tunnel that stays open moves to the native relay whatever it carries: only short ones stay in JavaScript.
    if (this.spliceAt !== Infinity && now - this.openedAt >= LONG_LIVED_MS) moveSoon(this as Tunnel<unknown>);
  }

  /** @internal the sockets now belong to the native relay (client is its side a, upstream its side b) */
  handOver(start: (onEnd: (e: SpliceEnd) => void) => SplicedPair): void {
    const base = [this.bytesUp, this.bytesDown] as const;
    this.#spliced = start((e) => this.#splicedEnd(e));
    this.#splicedBase = base;
    // The native relay has the connection; the destroyed socket objects would only cost memory per idle tunnel.
    this.client = HANDED_OVER;
    this.upstream = HANDED_OVER;
    this.spliceAt = Infinity;
  }

  /** The native relay ended: the same reason, reset flag and byte counts the JavaScript relay would have given. */
  #splicedEnd(e: SpliceEnd): void {
    const pair = this.#spliced as SplicedPair;
    pair.counts[0] = e.bytesAtoB;
    pair.counts[1] = e.bytesBtoA;
    if (e.first !== '') {
      const side = e.first === 'a' ? 'client' : 'upstream';
      this.reason ??= e.firstReset ? `${side}_reset` : `${side}_closed`;
    }
    if (e.end !== 'fin') this.reset = true;
    pair.closed(e.end !== 'fin');
    this.streamClosed();
    this.streamClosed();
  }

  /** @internal */
  streamClosed(): void {
    if (++this.#closed === 2) this.#set.finish(this);
  }
}

function onData(this: RelayStream, chunk: Buffer): void {
  const tunnel = this[TUNNEL];
  if ((this[READ] += chunk.length) >= tunnel.spliceAt) moveSoon(tunnel);
  tunnel.onData?.(this[IS_CLIENT], chunk);
  const peer = this[PEER];
  if (peer.destroyed) {
    this.destroy();
    return;
  }
  if (!peer.write(chunk)) this.pause();
}

/*
 * Reads into a reused buffer (net's `onread`), for sockets wsvia creates itself: Node otherwise allocates a fresh
 * 64 KiB buffer for every read. The buffer may be reused only if the write of the previous read no longer refers
 * to it: a write that does not complete at once (the peer's kernel buffer is full, or writes are already queued)
 * keeps a reference. Then this socket gets a fresh buffer for its next read and the old one belongs to the write;
 * so the buffer is reused exactly while the relay keeps up, and behaves as Node's default when it does not.
 * A socket gets its own buffer only once a read fills the small shared one (bulk traffic) and gives it up on the
 * next small read, so idle tunnels cost no buffer at all.
 * Node calls `buffer()` before each read and `callback` (with the socket as `this`) after it.
 */
/** `onread` options for a socket the relay will own (CONNECT tunnels to the destination). */
export function reusedReads(): net.OnReadOpts {
  // Node calls `buffer()` without a `this` (and once already when the socket is made), so each socket's own
  // buffer lives in this closure, and only once the socket moves bulk data: idle tunnels must stay cheap.
  let own: Buffer | undefined;
  return {
    buffer: () => own ?? SHARED,
    callback(this: RelayStream, nread: number, buf: Uint8Array): boolean {
      const peer = this[PEER] as Duplex | undefined;
      // The shared buffer is read into by every socket: what it holds is copied before it leaves this callback.
      const shared = buf === SHARED;
      const data = shared ? Buffer.from(buf.subarray(0, nread)) : buf.subarray(0, nread);
      if (shared && nread === SHARED.length) own = Buffer.allocUnsafeSlow(READ_SIZE);
      else if (!shared && nread < SHARED.length) own = undefined;
      if (peer === undefined) {
        // Not relaying yet (the socket is paused until then, so this is a safety net): keep the bytes for attach().
        (this[EARLY] ??= []).push(Buffer.from(data));
        own = undefined;
        return true;
      }
      const tunnel = this[TUNNEL];
      if ((this[READ] += nread) >= tunnel.spliceAt) moveSoon(tunnel);
      const tap = tunnel.onData;
      if (tap) tap(this[IS_CLIENT], Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      if (peer.destroyed) {
        this.destroy();
        return false;
      }
      const ok = peer.write(data);
      // A write still pending refers to the buffer: it is the write's now, the next read gets another.
      if (!shared && peer.writableLength > 0) own = undefined;
      // false stops reading until the peer's drain resumes this socket (onDrain), as pause() does for data events.
      return ok;
    },
  };
}

function onDrain(this: RelayStream): void {
  this[PEER].resume();
}

// RFC 9110 §9.3.6: a tunnel closes when either side closes; a FIN is passed on as a FIN (half-close), so
// protocols that end their sending side first (a TLS close_notify then FIN) still get their answer.
function onEnd(this: RelayStream): void {
  // Node 20 and 22 may report bytes then an RST as an end (endWasReset): that is a reset, passed on as one.
  if (endWasReset(this)) {
    this[ERRORED] = true;
    this.destroy();
    return;
  }
  // Whoever sends the first FIN closed the tunnel, whichever socket's close event comes first.
  const tunnel = this[TUNNEL];
  if (tunnel.halfCloseOnly !== this) tunnel.reason ??= this[IS_CLIENT] ? 'client_closed' : 'upstream_closed';
  const peer = this[PEER];
  if (!peer.destroyed && !peer.writableEnded) peer.end();
}

function onError(this: RelayStream): void {
  // The close that follows does the rest; the listener keeps the error from being thrown.
  this[ERRORED] = true;
}

function onClose(this: RelayStream, hadError?: boolean): void {
  const tunnel = this[TUNNEL];
  const peer = this[PEER];
  const side = this[IS_CLIENT] ? 'client' : 'upstream';
  const mode = tunnel.byteStream;
  // In byte-stream mode a stream that closes before its reads ended was cut, not ended (ByteStreamMode).
  if (hadError === true || this[ERRORED] || (mode !== undefined && !this.readableEnded)) {
    if (mode !== undefined && tunnel.reason === `${side}_closed`) tunnel.reason = `${side}_reset`;
    tunnel.reason ??= `${side}_reset`;
    tunnel.reset = true;
    // STYLE.md trap 18: a reset is passed on as a reset, never a FIN: the far peer must not take truncated data
    // as complete. resetStream knows the socket type (trap 11: resetAndDestroy() throws on a TLSSocket).
    // The bridge's WebSocket close reason says whether the other side was reset or failed: it gets the error.
    resetStream(peer, (mode === undefined ? null : this.errored) ?? new StreamReset(side));
  } else {
    tunnel.reason ??= `${side}_closed`;
    if (mode !== undefined) flushThenClose(peer as RelayStream, mode.flushTimeout);
    else if (!peer.destroyed && !peer.writableEnded) peer.end();
  }
  tunnel.streamClosed();
}

/** Byte-stream mode: `s`'s peer closed cleanly; `s` is ended, closed once flushed, reset if it never flushes. */
function flushThenClose(s: RelayStream, ms: number): void {
  if (s.destroyed) return;
  if (!s.writableEnded) s.end();
  if (s.writableFinished) return void s.destroy();
  s[FLUSH] = setTimeout(resetStream, ms, s);
  s.once('finish', onFlushed);
  s.once('close', onFlushClosed);
}

function onFlushed(this: Duplex): void {
  this.destroy();
}

function onFlushClosed(this: RelayStream): void {
  clearTimeout(this[FLUSH]);
}

// A forwarded exchange is over once its answer is written: a client that keeps its side open gets closed.
function onAnswerWritten(this: Duplex): void {
  this.destroy();
}

function attach<I>(
  stream: Duplex,
  peer: Duplex,
  tunnel: Tunnel<I>,
  isClient: boolean,
  forward: boolean,
): void {
  const s = stream as RelayStream;
  s[PEER] = peer;
  s[TUNNEL] = tunnel as Tunnel<unknown>;
  s[IS_CLIENT] = isClient;
  // An error during the setup whose close is still to come counts too.
  s[ERRORED] = s.errored !== null;
  s[READ] = 0;
  const early = s[EARLY];
  if (early !== undefined) {
    s[EARLY] = undefined;
    for (const b of early) {
      s[READ] += b.length;
      tunnel.onData?.(isClient, b);
      peer.write(b);
    }
  }
  if (forward) {
    s.on('data', onData);
    s.on('end', onEnd);
  }
  s.on('drain', onDrain);
  s.on('error', onError);
  s.on('close', onClose);
}

/** True when `s` was destroyed and its `close` event is already past: the relay's handler would never run. */
function alreadyClosed(s: Duplex): boolean {
  return s.destroyed && s.closed;
}

/** The JavaScript relay between `client` and `upstream` (see {@link TunnelSet.open}). */
function relayJs<I>(t: Tunnel<I>, client: Duplex, upstream: Duplex, clientToUpstream: boolean): void {
  attach(client, upstream, t, true, clientToUpstream);
  attach(upstream, client, t, false, true);
  if (!clientToUpstream) client.once('finish', onAnswerWritten);
  // A FIN that came during the setup (a client that sends its request and half-closes at once) has had its
  // 'end' event already: nothing else would pass it on, and the tunnel would wait for the idle timeout.
  if (clientToUpstream && client.readableEnded) onEnd.call(client as RelayStream);
  if (upstream.readableEnded) onEnd.call(upstream as RelayStream);
  // A stream may have been destroyed while the tunnel was being set up: its close event is already past.
  const clientGone = alreadyClosed(client);
  const upstreamGone = alreadyClosed(upstream);
  if (clientGone) onClose.call(client as RelayStream, client.errored !== null);
  if (upstreamGone) onClose.call(upstream as RelayStream, upstream.errored !== null);
  if (clientToUpstream) client.resume();
  upstream.resume();
}

/** Takes the JavaScript relay's handlers off `s` (the tunnel moves to the native relay). */
function detach(s: Duplex): void {
  s.removeListener('data', onData);
  s.removeListener('end', onEnd);
  s.removeListener('drain', onDrain);
  s.removeListener('error', onError);
  s.removeListener('close', onClose);
}

/**
 * Writes what a fresh connection's send buffer takes of `b` now, without waiting: the bytes written, 0 when it
 * takes none or the write fails (the socket the fd then becomes meets that error on its own write).
 */
function writeNow(fd: number, b: Buffer): number {
  try {
    return fs.writeSync(fd, b);
  } catch {
    return 0;
  }
}

/** The tunnel carried enough to be worth the native relay's handover: made once, outside the read callback. */
function moveSoon(t: Tunnel<unknown>): void {
  t.spliceAt = Infinity;
  process.nextTick(moveToNative, t);
}

/**
 * Moves a tunnel the JavaScript relay carries to the native relay, if both sockets are still open both ways (a FIN
 * or an error seen meanwhile keeps it in JavaScript, which ends it as it always does).
 */
function moveToNative(t: Tunnel<unknown>): void {
  const c = t.client;
  const u = t.upstream;
  if (t.reason !== undefined || !spliceable(c) || !spliceable(u)) return;
  detach(c);
  detach(u);
  new Handover(t, c, u);
}

/** What Node had read from `s` and not yet relayed (the relay's early bytes, the stream's buffer); reads stop. */
function takeRead(s: net.Socket): Buffer[] {
  const held = s as net.Socket & { [EARLY]?: Buffer[] | undefined };
  const early = held[EARLY] ?? [];
  held[EARLY] = undefined;
  return [...early, ...stopReads(s)];
}

const EMPTY = Buffer.alloc(0);

/**
 * Hands a tunnel's two sockets to the native relay: Node's reads stop, what it had read is written on, and once
 * every pending write is flushed the fds go to the addon. A socket that closes meanwhile (a reset: reads are
 * stopped, so no FIN can be seen), or an addon that refuses the fds, leaves the tunnel with the JavaScript relay,
 * which handles the close as it always does.
 */
class Handover<I> {
  #pending = 0;
  #done = false;
  readonly #t: Tunnel<I>;
  readonly #c: net.Socket;
  readonly #u: net.Socket;
  readonly #onFlushed = (): void => {
    if (--this.#pending === 0) this.#go();
  };
  readonly #onClose = (): void => this.#fallback();

  constructor(t: Tunnel<I>, c: net.Socket, u: net.Socket) {
    this.#t = t;
    this.#c = c;
    this.#u = u;
    for (const s of [c, u]) s.on('error', onError);
    for (const b of takeRead(c)) u.write(b);
    for (const b of takeRead(u)) c.write(b);
    for (const s of [c, u])
      if (s.writableLength > 0) {
        this.#pending++;
        // A zero-length write's callback comes once every write before it is flushed.
        s.write(EMPTY, this.#onFlushed);
      }
    if (this.#pending === 0) this.#go();
    else for (const s of [c, u]) s.on('close', this.#onClose);
  }

  #settle(): boolean {
    if (this.#done) return false;
    this.#done = true;
    for (const s of [this.#c, this.#u]) {
      s.removeListener('close', this.#onClose);
      s.removeListener('error', onError);
    }
    return true;
  }

  #go(): void {
    if (this.#pending > 0 || !spliceable(this.#c) || !spliceable(this.#u)) return this.#fallback();
    if (!this.#settle()) return;
    try {
      this.#t.handOver((onEnd) => new SplicedPair(this.#c, this.#u, onEnd));
    } catch {
      this.#done = false;
      this.#fallback();
    }
  }

  #fallback(): void {
    if (!this.#settle()) return;
    relayJs(this.#t, this.#c, this.#u, true);
  }
}

/** All open tunnels of one server, with the shared idle/lifetime sweep. */
export class TunnelSet<I = unknown> {
  readonly #tunnels = new Set<Tunnel<I>>();
  readonly #onFinish: (t: Tunnel<I>) => void;
  #limits: RelayLimits;
  #timer: NodeJS.Timeout | undefined;
  #emptied: (() => void)[] = [];
  readonly #byteStream: ByteStreamMode | undefined;
  readonly #splice: boolean;
  readonly #spliceAfter: number;

  /**
   * `relay` picks the relay for tunnels between two plain TCP sockets: `js` (the default) always relays in
   * JavaScript; `splice` and `auto` hand them to the native relay when it loaded (spliceSupport() says whether it
   * did; the CLI refuses to start with `splice` when it did not). Other tunnels always use the JavaScript relay.
   */
  constructor(
    options: RelayLimits & {
      onFinish: (t: Tunnel<I>) => void;
      byteStream?: ByteStreamMode;
      relay?: RelayChoice;
      /**
       * With the native relay: bytes a tunnel carries in one direction on the JavaScript relay first (0, the
       * default: none). A handover costs about what relaying a few reads in JavaScript does, so a tunnel that opens,
       * says a little and closes is cheaper never handed over; one that moves bulk data is handed over after its
       * first reads, and one that stays open (idle or not) at the first sweep 2 s after it opened.
       */
      spliceAfter?: number;
    },
  ) {
    this.#limits = { idleTimeout: options.idleTimeout, maxLifetime: options.maxLifetime };
    this.#onFinish = options.onFinish;
    this.#byteStream = options.byteStream;
    const relay = options.relay ?? 'js';
    this.#splice = relay !== 'js' && options.byteStream === undefined && spliceSupport().available;
    this.#spliceAfter = Math.max(0, options.spliceAfter ?? 0);
  }

  /** The relay plain TCP tunnels get: 'splice' when the native relay is chosen and loaded. */
  get relay(): 'js' | 'splice' {
    return this.#splice ? 'splice' : 'js';
  }

  get size(): number {
    return this.#tunnels.size;
  }

  /** New limits for every open and future tunnel (a configuration reload). */
  set limits(limits: RelayLimits) {
    this.#limits = { idleTimeout: limits.idleTimeout, maxLifetime: limits.maxLifetime };
    this.#disarm();
    if (this.#tunnels.size > 0) this.#arm();
  }

  /**
   * Starts relaying between `client` and `upstream`. With `clientToUpstream` false, the caller feeds the
   * upstream from the client itself (a forwarded request body) and only the answer direction is relayed.
   * `onFinish` is called exactly once for the tunnel, when both streams have closed, whatever closed them.
   */
  open(
    client: Duplex,
    upstream: Duplex,
    info: I,
    clientToUpstream = true,
    options: OpenOptions = {},
  ): Tunnel<I> {
    const t = new Tunnel(this, { client, upstream, byteStream: this.#byteStream }, info, options);
    this.#tunnels.add(t);
    const native =
      this.#splice &&
      clientToUpstream &&
      options.onData === undefined &&
      options.halfCloseOnly === undefined &&
      spliceable(client) &&
      spliceable(upstream);
    if (native && this.#spliceAfter === 0) new Handover(t, client, upstream);
    else {
      relayJs(t, client, upstream, clientToUpstream);
      if (native) t.spliceAt = this.#spliceAfter;
    }
    this.#arm();
    return t;
  }

  /**
   * A tunnel whose destination the native dialer connected (`fd`, now this set's): the native relay carries it from
   * the first byte, and no socket object is ever made for that side. `early` (what the client sent before the tunnel
   * began: bytes after a CONNECT head, a ClientHello read for its SNI) is written to the fd first, at once if the
   * kernel takes it all. Where it does not, or the client's side is not ready for the handover (bytes read but not
   * yet relayed, our answer not yet flushed, a TLS client), the fd becomes a socket and the tunnel opens as
   * {@link open} opens it.
   */
  openDialed(client: net.Socket, fd: number, early: Buffer, info: I): Tunnel<I> {
    const sent = early.length > 0 ? writeNow(fd, early) : 0;
    if (
      this.#splice &&
      sent === early.length &&
      client.readableLength === 0 &&
      client.writableLength === 0 &&
      spliceable(client)
    ) {
      const t = new Tunnel(this, { client, upstream: HANDED_OVER, byteStream: undefined }, info, {});
      this.#tunnels.add(t);
      stopReads(client);
      try {
        t.handOver((onEnd) => new SplicedPair(client, fd, onEnd));
        this.#arm();
        return t;
      } catch {
        this.#tunnels.delete(t);
        restartReads(client);
      }
    }
    const upstream = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    upstream.setNoDelay(true);
    if (sent < early.length) upstream.write(early.subarray(sent));
    return this.open(client, upstream, info);
  }

  /** @internal */
  finish(t: Tunnel<I>): void {
    if (!this.#tunnels.delete(t)) return;
    try {
      this.#onFinish(t);
    } finally {
      if (this.#tunnels.size === 0) this.#empty();
    }
  }

  /** Cuts every open tunnel (the end of a drain). */
  abortAll(reason: CloseReason): void {
    for (const t of [...this.#tunnels]) t.abort(reason);
  }

  /** Resolves once no tunnel is open, each one's `onFinish` done (so its log line is written). */
  whenEmpty(): Promise<void> {
    if (this.#tunnels.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptied.push(resolve));
  }

  #empty(): void {
    this.#disarm();
    const waiting = this.#emptied;
    this.#emptied = [];
    for (const resolve of waiting) resolve();
  }

  #arm(): void {
    const { idleTimeout, maxLifetime } = this.#limits;
    if (this.#timer || (idleTimeout <= 0 && maxLifetime <= 0)) return;
    const limits = [idleTimeout, maxLifetime].filter((x) => x > 0);
    // A tunnel is cut within a quarter of its limit past it; at most one wake-up a second, at least every 50 ms.
    const every = Math.max(50, Math.min(1000, Math.min(...limits) / 4));
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const t of this.#tunnels) t.sweep(now, this.#limits);
    }, every);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
