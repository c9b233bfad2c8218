/**
 * The relay hot path: raw bytes between the client and the destination, no re-framing and no copies. Each socket
 * gets the same five module-level handlers (bound through `this`, so a tunnel costs no closures): data is written
 * to the peer and reading pauses when the peer's `write()` returns false, resuming on its `drain` (backpressure
 * both ways, so a slow reader never makes the proxy buffer more than one socket's high-water mark); an `end` is
 * passed on as a half-close; a reset or error on one side resets the other.
 *
 * Idle and lifetime limits are enforced by one shared sweep over all tunnels ({@link TunnelSet}), never a timer
 * per socket: a tunnel's activity is read from the sockets' own byte counters.
 */
import type * as net from 'node:net';
import type { Socket } from 'node:net';

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

/** The size of a reused read buffer: what Node reads per call by default. */
const READ_SIZE = 64 * 1024;
/** Where sockets without bulk traffic read: small reads are copied out of it, as Node would allocate them. */
const SHARED = Buffer.allocUnsafeSlow(16 * 1024);

interface RelaySocket extends Socket {
  [PEER]: Socket;
  [TUNNEL]: Tunnel;
  [IS_CLIENT]: boolean;
  [EARLY]: Buffer[] | undefined;
}

/** What the access log says about a tunnel, filled in by the server. */
export interface TunnelInfo {
  readonly client: string;
  readonly user: string | undefined;
  readonly method: string;
  readonly target: string;
  readonly status: number;
  /** When the request head was complete (ms since the epoch). */
  readonly requestedAt: number;
  readonly clientKey: string;
}

/** One open tunnel (or forwarded exchange): its two sockets and what the log needs at the end. */
export class Tunnel {
  readonly info: TunnelInfo;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly openedAt = Date.now();
  reason: CloseReason | undefined;
  #closed = 0;
  #lastBytes = -1;
  #lastActive = Date.now();
  readonly #set: TunnelSet;
  /** Bytes the client had sent and received before the relay began (its request head, our answer). */
  readonly #baseUp: number;
  readonly #baseDown: number;

  constructor(set: TunnelSet, client: Socket, upstream: Socket, info: TunnelInfo) {
    this.info = info;
    this.#set = set;
    this.client = client;
    this.upstream = upstream;
    this.#baseUp = client.bytesRead;
    this.#baseDown = client.bytesWritten;
  }

  /** Bytes relayed from the client to the destination, and back, since the relay began. */
  get bytesUp(): number {
    return this.client.bytesRead - this.#baseUp;
  }
  get bytesDown(): number {
    return this.client.bytesWritten - this.#baseDown;
  }

  /** Closes both sides at once (timeouts, drain). */
  abort(reason: CloseReason): void {
    this.reason ??= reason;
    this.client.destroy();
    this.upstream.destroy();
  }

  /** @internal by the shared sweep: cuts the tunnel past its lifetime, or when no byte moved for `idle` ms. */
  sweep(now: number, idle: number, lifetime: number): void {
    if (lifetime > 0 && now - this.openedAt >= lifetime) return this.abort('max_lifetime');
    const bytes =
      this.client.bytesRead + this.client.bytesWritten + this.upstream.bytesRead + this.upstream.bytesWritten;
    if (bytes !== this.#lastBytes) {
      this.#lastBytes = bytes;
      this.#lastActive = now;
    } else if (idle > 0 && now - this.#lastActive >= idle) this.abort('idle_timeout');
  }

  /** @internal */
  socketClosed(): void {
    if (++this.#closed === 2) this.#set.finish(this);
  }
}

function onData(this: RelaySocket, chunk: Buffer): void {
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
    callback(this: RelaySocket, nread: number, buf: Uint8Array): boolean {
      const peer = this[PEER] as Socket | undefined;
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

function onDrain(this: RelaySocket): void {
  this[PEER].resume();
}

// RFC 9110 §9.3.6: a tunnel closes when either side closes; a FIN is passed on as a FIN (half-close), so
// protocols that end their sending side first (a TLS close_notify then FIN) still get their answer.
function onEnd(this: RelaySocket): void {
  // Whoever sends the first FIN closed the tunnel, whichever socket's close event comes first.
  this[TUNNEL].reason ??= this[IS_CLIENT] ? 'client_closed' : 'upstream_closed';
  const peer = this[PEER];
  if (!peer.destroyed && !peer.writableEnded) peer.end();
}

function onError(this: RelaySocket): void {
  // Handled in onClose (hadError is true); the listener keeps the error from being thrown.
}

function onClose(this: RelaySocket, hadError: boolean): void {
  const tunnel = this[TUNNEL];
  const peer = this[PEER];
  const side = this[IS_CLIENT] ? 'client' : 'upstream';
  if (hadError) {
    tunnel.reason ??= `${side}_reset`;
    // A reset is passed on as a reset, not a clean close: the far peer must not take truncated data as complete.
    if (!peer.destroyed) peer.resetAndDestroy();
  } else {
    tunnel.reason ??= `${side}_closed`;
    if (!peer.destroyed && !peer.writableEnded) peer.end();
  }
  tunnel.socketClosed();
}

// A forwarded exchange is over once its answer is written: a client that keeps its side open gets closed.
function onAnswerWritten(this: Socket): void {
  this.destroy();
}

function attach(socket: Socket, peer: Socket, tunnel: Tunnel, isClient: boolean, forward: boolean): void {
  const s = socket as RelaySocket;
  s[PEER] = peer;
  s[TUNNEL] = tunnel;
  s[IS_CLIENT] = isClient;
  const early = s[EARLY];
  if (early !== undefined) {
    s[EARLY] = undefined;
    for (const b of early) peer.write(b);
  }
  if (forward) {
    s.on('data', onData);
    s.on('end', onEnd);
  }
  s.on('drain', onDrain);
  s.on('error', onError);
  s.on('close', onClose);
}

/** All open tunnels of one server, with the shared idle/lifetime sweep. */
export class TunnelSet {
  readonly #tunnels = new Set<Tunnel>();
  readonly #onFinish: (t: Tunnel) => void;
  readonly #idle: number;
  readonly #lifetime: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { idleTimeout: number; maxLifetime: number; onFinish: (t: Tunnel) => void }) {
    this.#idle = options.idleTimeout;
    this.#lifetime = options.maxLifetime;
    this.#onFinish = options.onFinish;
  }

  get size(): number {
    return this.#tunnels.size;
  }

  /**
   * Starts relaying between `client` and `upstream`. With `clientToUpstream` false, the caller feeds the
   * upstream from the client itself (a forwarded request body) and only the answer direction is relayed.
   */
  open(client: Socket, upstream: Socket, info: TunnelInfo, clientToUpstream = true): Tunnel {
    const t = new Tunnel(this, client, upstream, info);
    this.#tunnels.add(t);
    attach(client, upstream, t, true, clientToUpstream);
    attach(upstream, client, t, false, true);
    if (!clientToUpstream) client.once('finish', onAnswerWritten);
    // A socket may have been destroyed while the tunnel was being set up: its close event is already past.
    if (client.destroyed && client.closed) onClose.call(client as RelaySocket, false);
    if (upstream.destroyed && upstream.closed) onClose.call(upstream as RelaySocket, false);
    if (clientToUpstream) client.resume();
    upstream.resume();
    this.#arm();
    return t;
  }

  /** @internal */
  finish(t: Tunnel): void {
    if (!this.#tunnels.delete(t)) return;
    if (this.#tunnels.size === 0) this.#disarm();
    this.#onFinish(t);
  }

  abortAll(reason: CloseReason): void {
    for (const t of [...this.#tunnels]) t.abort(reason);
  }

  #arm(): void {
    if (this.#timer || (this.#idle <= 0 && this.#lifetime <= 0)) return;
    const limits = [this.#idle, this.#lifetime].filter((x) => x > 0);
    // A tunnel is cut within a quarter of its limit past it; at most one wake-up a second, at least every 50 ms.
    const every = Math.max(50, Math.min(1000, Math.min(...limits) / 4));
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const t of this.#tunnels) t.sweep(now, this.#idle, this.#lifetime);
    }, every);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
