/**
 * The WebSocket relay after the 101: raw bytes both ways, never decoded, with backpressure (a side that does not
 * read pauses the other). This is what keeps the CPU per GB and the memory per idle WebSocket low: no frame is
 * parsed into a message, no payload copied or unmasked, and an idle WebSocket holds two sockets and this object.
 *
 * A {@link FrameScanner} per direction follows the frame headers so the gateway can speak in the stream when it
 * must: a ping injected between two frames (RFC 6455 §5.4 allows control frames inside fragmented messages), a
 * close 1001 on drain. Pings go to the client unmasked and to the upstream masked (§5.3: the gateway is the
 * client there). Pongs are relayed on like any frame; an unsolicited pong is allowed and ignored (§5.5.3).
 *
 * A side that dies without a close frame (a reset, a FIN, a broken frame, or silence after a ping) does not leave the
 * other with a bare TCP close (1006, which nginx and HAProxy users read as a network fault): the gateway sends it a
 * close frame itself, 1011 (1014 when the upstream sent a broken frame) with a short reason, then ends it. When the
 * stream towards it is in the middle of a frame no close frame can follow, and it is reset instead.
 */
import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { closePayload, encodeControlFrame, FrameScanner, OPCODES } from '../protocol/ws-frame-scanner.js';
import { resetStream, StreamReset } from '../serve/reset.js';

export type Side = 'client' | 'upstream';
export type Closer = Side | 'gateway';

export interface RelayTimers {
  /** Milliseconds between pings to each side; 0: none. */
  readonly ping: number;
  /** Milliseconds to wait for a pong (or any byte) after a ping. */
  readonly pingTimeout: number;
  /** Milliseconds without a byte either way before the gateway closes it; 0: never. */
  readonly idleTimeout: number;
  /** Milliseconds before the gateway closes it however busy; 0: never. */
  readonly maxLifetime: number;
}

export interface RelayEnd {
  readonly bytesToUpstream: number;
  readonly bytesToClient: number;
  /** Who sent the first close frame, or closed the connection first. */
  readonly closedBy: Closer;
  /** The first close code seen (1005 when the close frame had none); null when no close frame went by. */
  readonly closeCode: number | null;
  /**
   * Why it ended, when not by a close handshake between the peers: the gateway's own close (`idle`, `lifetime`,
   * `drain`), a dead peer (`dead_*`: no pong), a side that reset (`*_reset`) or closed TCP without a close frame
   * (`*_lost`), a broken frame (`protocol`).
   */
  readonly reason: EndReason | null;
  readonly durationMs: number;
}

export type EndReason =
  | 'dead_client'
  | 'dead_upstream'
  | 'client_reset'
  | 'upstream_reset'
  | 'client_lost'
  | 'upstream_lost'
  | 'idle'
  | 'lifetime'
  | 'drain'
  | 'protocol';

/** How a side was lost, for {@link WsRelay}'s `#lost`. */
type Loss = 'reset' | 'lost' | 'dead' | 'protocol';

export interface RelayHooks {
  onEnd(end: RelayEnd): void;
  /** A ping missed its deadline on this side (the relay then closes). */
  onDead?(side: Side): void;
}

/** The reason in the gateway's close frame to the side that is still there. */
const LOSS_TEXT: Record<Loss, (side: Side) => string> = {
  reset: (side) => `${side} connection reset`,
  lost: (side) => `${side} closed without a close frame`,
  dead: (side) => `${side} unresponsive`,
  protocol: (side) => `${side} sent a broken frame`,
};

/** How long the gateway waits for the peers to answer its own close before cutting the sockets. */
const CLOSE_GRACE_MS = 3_000;

/** Ends `s` unless it was ended already (a second end() builds an error and its stack trace, then drops it). */
function endOnce(s: Duplex): void {
  if (!s.writableEnded) s.end();
}

function mask(): Buffer {
  return randomFillSync(Buffer.allocUnsafe(4));
}

/**
 * A relayed socket carries its relay (one property: which side it is, the relay knows), so one set of handlers
 * serves every WebSocket.
 */
const RELAY = Symbol('wsvia.wsRelay');

interface RelayedStream extends Duplex {
  [RELAY]: WsRelay;
}

class Direction {
  readonly scanner: FrameScanner;
  /** Frames the gateway wants to send in this direction, waiting for a frame boundary (none: no array). */
  pending: Buffer[] | undefined;
  bytes = 0;
  /** True once the gateway sent its own close this way: later frames from the source are dropped. */
  discard = false;
  constructor(peer: string) {
    this.scanner = new FrameScanner(peer);
  }
}

/** An open WebSocket as the gateway sees it (drain, shutdown), whichever relay carries it. */
export interface OpenWebSocket {
  /** Closes it from the gateway: a close frame to the client first (drain, idle, lifetime). */
  close(code: number, reason: string, why: NonNullable<RelayEnd['reason']>): void;
  /** Cuts both sockets now. */
  destroy(): void;
}

/** Where a relay continues from, when the native relay hands a WebSocket back (native-ws-relay.ts). */
export interface RelayResume {
  readonly started: number;
  readonly bytesToUpstream: number;
  readonly bytesToClient: number;
  /** Per direction: bytes already scanned, written on as they are, and the payload still to come after them. */
  readonly toUpstream: { readonly scanned: Buffer; readonly remaining: number };
  readonly toClient: { readonly scanned: Buffer; readonly remaining: number };
}

export class WsRelay implements OpenWebSocket {
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #hooks: RelayHooks;
  readonly #timers: RelayTimers;
  readonly #started: number;
  readonly #resume: RelayResume | undefined;
  /** Frames from the client, to the upstream. */
  readonly #up = new Direction('the client');
  /** Frames from the upstream, to the client. */
  readonly #down = new Direction('the upstream');
  #closedBy: Closer | undefined;
  #firstCloseCode: number | undefined;
  /** The code of the gateway's own close frames, when it sent them. */
  #gatewayCode: number | undefined;
  #reason: RelayEnd['reason'] = null;
  #timer: NodeJS.Timeout | undefined;
  #lifetime: NodeJS.Timeout | undefined;
  #grace: NodeJS.Timeout | undefined;
  #pingMarks:
    { clientBytes: number; upstreamBytes: number; clientPongs: number; upstreamPongs: number } | undefined;
  #ended = false;
  #closing = false;

  constructor(
    client: Duplex,
    upstream: Duplex,
    timers: RelayTimers,
    hooks: RelayHooks,
    resume?: RelayResume,
  ) {
    this.#client = client;
    this.#upstream = upstream;
    this.#timers = timers;
    this.#hooks = hooks;
    this.#started = resume?.started ?? Date.now();
    this.#resume = resume;
    if (resume) {
      this.#up.bytes = resume.bytesToUpstream;
      this.#down.bytes = resume.bytesToClient;
      this.#up.scanner.resumeInPayload(resume.toUpstream.remaining);
      this.#down.scanner.resumeInPayload(resume.toClient.remaining);
    }
  }

  /**
   * Starts relaying. `fromUpstream`: bytes that followed the 101 in the upstream's answer; `fromClient`: bytes
   * the client sent after its request head. Both are frames already and go on first.
   */
  start(fromUpstream: Uint8Array, fromClient: Uint8Array): void {
    const c = this.#client;
    const u = this.#upstream;
    this.#attach(c);
    this.#attach(u);
    if (this.#resume) this.#writeScanned(this.#resume);
    if (fromUpstream.length > 0) this.#onData(Buffer.from(fromUpstream), this.#down, c, u);
    if (fromClient.length > 0) this.#onData(Buffer.from(fromClient), this.#up, u, c);
    const t = this.#timers;
    if (t.idleTimeout > 0) {
      // net.Socket resets its timeout on every read and write, so the client socket alone sees traffic both ways.
      (c as Duplex & { setTimeout?: (ms: number) => void }).setTimeout?.(t.idleTimeout);
      c.on('timeout', WsRelay.#onIdle);
    }
    if (t.maxLifetime > 0) {
      const left = Math.max(0, t.maxLifetime - (Date.now() - this.#started));
      this.#lifetime = setTimeout(() => this.close(1001, 'max lifetime', 'lifetime'), left);
    }
    if (t.ping > 0) this.#timer = setTimeout(() => this.#sendPings(), t.ping);
  }

  /** What the native relay had read and scanned but not written: written on first, as it is. */
  #writeScanned(r: RelayResume): void {
    for (const [bytes, dir, to, from] of [
      [r.toUpstream.scanned, this.#up, this.#upstream, this.#client],
      [r.toClient.scanned, this.#down, this.#client, this.#upstream],
    ] as const) {
      if (bytes.length === 0) continue;
      dir.bytes += bytes.length;
      if (!to.write(bytes)) from.pause();
    }
  }

  /*
   * The handlers every relayed socket shares (the socket says which relay and side it is): an idle WebSocket
   * costs no closure per listener (issue 15, bench/NOTES.md's heap-snapshot diff).
   */
  static readonly #onSocketData = function (this: RelayedStream, chunk: Buffer): void {
    const r = this[RELAY];
    if (this === r.#client) r.#onData(chunk, r.#up, r.#upstream, r.#client);
    else r.#onData(chunk, r.#down, r.#client, r.#upstream);
  };
  static readonly #onSocketDrain = function (this: RelayedStream): void {
    const r = this[RELAY];
    (this === r.#client ? r.#upstream : r.#client).resume();
  };
  static readonly #onSocketEnd = function (this: RelayedStream): void {
    this[RELAY].#onEnd(this[RELAY].#sideOf(this));
  };
  static readonly #onSocketError = function (this: RelayedStream): void {
    this[RELAY].#lost(this[RELAY].#sideOf(this), 'reset');
  };
  static readonly #onSocketClose = function (this: RelayedStream): void {
    this[RELAY].#onClose(this[RELAY].#sideOf(this));
  };
  static readonly #onIdle = function (this: RelayedStream): void {
    this[RELAY].close(1001, 'idle timeout', 'idle');
  };

  #sideOf(s: Duplex): Side {
    return s === this.#client ? 'client' : 'upstream';
  }

  #attach(s: Duplex): void {
    (s as RelayedStream)[RELAY] = this;
    s.on('data', WsRelay.#onSocketData);
    s.on('drain', WsRelay.#onSocketDrain);
    s.on('end', WsRelay.#onSocketEnd);
    s.on('error', WsRelay.#onSocketError);
    s.on('close', WsRelay.#onSocketClose);
  }

  get bytesToUpstream(): number {
    return this.#up.bytes;
  }

  get bytesToClient(): number {
    return this.#down.bytes;
  }

  #onData(chunk: Buffer, dir: Direction, to: Duplex, from: Duplex): void {
    // Nothing of a chunk with a broken frame is written: the stream towards `to` stays where this chunk began.
    const startedAtBoundary = dir.scanner.atBoundary;
    let boundary: number;
    try {
      boundary = dir.scanner.scan(chunk);
    } catch {
      this.#lost(from === this.#client ? 'client' : 'upstream', 'protocol', startedAtBoundary);
      return;
    }
    if (this.#firstCloseCode === undefined && dir.scanner.closeCode !== undefined) {
      this.#firstCloseCode = dir.scanner.closeCode;
      this.#closedBy ??= dir === this.#up ? 'client' : 'upstream';
    }
    if (dir.discard) return this.#afterOwnClose(dir);
    let ok: boolean;
    if (dir.pending !== undefined && (boundary > 0 || dir.scanner.atBoundary)) {
      dir.bytes += boundary;
      ok = boundary > 0 ? to.write(chunk.subarray(0, boundary)) : true;
      ok = this.#flushPending(dir, to) && ok;
      // RFC 6455 §5.5.1: nothing follows a Close frame; the rest of the chunk (the next frame) is dropped.
      if (dir.discard) this.#afterOwnClose(dir);
      else if (boundary < chunk.length) {
        dir.bytes += chunk.length - boundary;
        ok = to.write(chunk.subarray(boundary)) && ok;
      }
    } else {
      dir.bytes += chunk.length;
      ok = to.write(chunk);
    }
    if (!ok) from.pause();
    // The client answered the gateway's own close, and the answer went on to the upstream: the server ends TCP.
    if (
      dir === this.#up &&
      this.#closing &&
      this.#down.discard &&
      dir.scanner.closeCode !== undefined &&
      !dir.discard
    )
      endOnce(this.#client);
  }

  /**
   * The gateway closed this way: what the source still sends is dropped, and its reply close ends its part of the
   * handshake (§7.1.1: the server closes TCP first, so the client socket is ended here; the upstream ends its own).
   */
  #afterOwnClose(dir: Direction): void {
    if (dir === this.#up && dir.scanner.closeCode !== undefined) endOnce(this.#client);
  }

  /** Writes the gateway's own frames; the stream is at a frame boundary. */
  #flushPending(dir: Direction, to: Duplex): boolean {
    let ok = true;
    for (const f of dir.pending ?? []) {
      ok = to.write(f);
      if (f[0] === (0x80 | OPCODES.close)) dir.discard = true;
    }
    dir.pending = undefined;
    return ok;
  }

  /** Queues a control frame towards `side`, written now when the stream is between frames. */
  #inject(side: Side, frame: Buffer): void {
    const dir = side === 'client' ? this.#down : this.#up;
    const to = side === 'client' ? this.#client : this.#upstream;
    if (dir.discard) return;
    (dir.pending ??= []).push(frame);
    if (dir.scanner.atBoundary) this.#flushPending(dir, to);
  }

  #sendPings(): void {
    this.#timer = undefined;
    if (this.#ended || this.#closing) return;
    this.#pingMarks = {
      clientBytes: this.#up.bytes,
      upstreamBytes: this.#down.bytes,
      clientPongs: this.#up.scanner.pongs,
      upstreamPongs: this.#down.scanner.pongs,
    };
    const payload = Buffer.from('wsvia');
    this.#inject('client', encodeControlFrame(OPCODES.ping, payload));
    this.#inject('upstream', encodeControlFrame(OPCODES.ping, payload, mask()));
    this.#timer = setTimeout(() => this.#checkPongs(), this.#timers.pingTimeout);
  }

  #checkPongs(): void {
    this.#timer = undefined;
    const m = this.#pingMarks;
    if (!m || this.#ended || this.#closing) return;
    // Any byte from a side since the ping proves it alive: a busy peer's pong may sit behind its data, and a
    // ping still waiting for a frame boundary was never sent.
    const clientAlive =
      this.#up.scanner.pongs > m.clientPongs ||
      this.#up.bytes > m.clientBytes ||
      this.#down.pending !== undefined;
    const upstreamAlive =
      this.#down.scanner.pongs > m.upstreamPongs ||
      this.#down.bytes > m.upstreamBytes ||
      this.#up.pending !== undefined;
    if (!clientAlive) {
      this.#hooks.onDead?.('client');
      this.#reap('client');
      return;
    }
    if (!upstreamAlive) {
      this.#hooks.onDead?.('upstream');
      this.#reap('upstream');
      return;
    }
    const rest = Math.max(0, this.#timers.ping - this.#timers.pingTimeout);
    this.#timer = setTimeout(() => this.#sendPings(), rest);
  }

  /** A side stopped answering: cut it, and tell the other one with a close frame that says it was no normal end. */
  #reap(dead: Side): void {
    this.#closedBy ??= 'gateway';
    this.#lost(dead, 'dead');
  }

  /**
   * A side is gone without a close handshake: it reset, closed TCP without a close frame, sent a broken frame or
   * stopped answering pings. It is cut; the other side gets a close frame from the gateway, 1011 (1014, "bad
   * gateway", when the upstream broke the protocol), unless the lost side's own close frame already reached it,
   * then its TCP ends. Mid-frame, no close frame can follow: it is reset instead.
   */
  #lost(side: Side, how: Loss, atBoundary?: boolean): void {
    if (this.#ended) return;
    const dead = side === 'client' ? this.#client : this.#upstream;
    const aliveSide: Side = side === 'client' ? 'upstream' : 'client';
    const alive = side === 'client' ? this.#upstream : this.#client;
    const toAlive = side === 'client' ? this.#up : this.#down;
    this.#closedBy ??= side;
    this.#reason ??= how === 'protocol' ? 'protocol' : how === 'dead' ? `dead_${side}` : `${side}_${how}`;
    resetStream(dead, new StreamReset(side));
    if (alive.destroyed || this.#closing || toAlive.discard) return;
    this.#closing = true;
    if (toAlive.scanner.closeCode === undefined) {
      if (!(atBoundary ?? toAlive.scanner.atBoundary)) {
        resetStream(alive, new StreamReset(side));
        return;
      }
      this.#gatewayCode = side === 'upstream' && how === 'protocol' ? 1014 : 1011;
      // At a boundary the close goes out now (a broken frame leaves the scanner mid-header: #inject would wait).
      toAlive.pending = undefined;
      toAlive.discard = true;
      alive.write(this.#closeFrame(aliveSide, this.#gatewayCode, LOSS_TEXT[how](side)));
    }
    endOnce(alive);
    this.#armGrace();
  }

  #closeFrame(side: Side, code: number, reason: string): Buffer {
    const p = closePayload(code, reason);
    return side === 'client'
      ? encodeControlFrame(OPCODES.close, p)
      : encodeControlFrame(OPCODES.close, p, mask());
  }

  /**
   * The gateway closes the WebSocket itself (drain, idle, lifetime), client first: a close frame to the client,
   * whose messages keep flowing to the upstream until its close reply, which is relayed to the upstream as the
   * upstream's close (so a message the client sent before it saw the close is never lost on the way). What the
   * upstream sends meanwhile cannot follow a close frame and is dropped. Cut after a grace period if a peer never
   * answers.
   */
  close(code: number, reason: string, why: NonNullable<RelayEnd['reason']>): void {
    if (this.#ended || this.#closing) return;
    this.#closing = true;
    this.#reason = why;
    this.#closedBy ??= 'gateway';
    this.#gatewayCode = code;
    this.#inject('client', this.#closeFrame('client', code, reason));
    // The upstream is mid-frame, so the client's close waits for that frame's end: the upstream is told now too
    // (an upstream that waits for the gateway must not hold the close up until the grace period).
    if (!this.#down.discard) this.#inject('upstream', this.#closeFrame('upstream', code, reason));
    this.#armGrace();
  }

  /**
   * Stops this relay when nothing is pending, so the native relay can take the sockets again: no close begun, no
   * frame of the gateway's waiting, no ping out, both directions between frames or inside a data frame's payload.
   * Returns the payload still to come each way; undefined (and nothing changed) otherwise. The caller removes the
   * relay's listeners from the sockets; this relay never ends or logs.
   */
  suspend(): { toUpstream: number; toClient: number } | undefined {
    const up = this.#up;
    const down = this.#down;
    if (this.#ended || this.#closing || this.#timer !== undefined || this.#grace !== undefined)
      return undefined;
    if (up.pending !== undefined || down.pending !== undefined || up.discard || down.discard)
      return undefined;
    if (up.scanner.closeCode !== undefined || down.scanner.closeCode !== undefined) return undefined;
    const toUpstream = up.scanner.payloadRemaining;
    const toClient = down.scanner.payloadRemaining;
    if (toUpstream === undefined || toClient === undefined) return undefined;
    this.#ended = true;
    clearTimeout(this.#lifetime);
    return { toUpstream, toClient };
  }

  /** Cuts both sockets now (shutdown after the drain timeout, tests). */
  destroy(): void {
    this.#client.destroy();
    this.#upstream.destroy();
  }

  #armGrace(): void {
    clearTimeout(this.#grace);
    this.#grace = setTimeout(() => {
      this.#client.destroy();
      this.#upstream.destroy();
    }, CLOSE_GRACE_MS);
  }

  /** True once `side` sent a close frame: its TCP may end now (§7.1.1). */
  #sentClose(side: Side): boolean {
    return (side === 'client' ? this.#up : this.#down).scanner.closeCode !== undefined;
  }

  #onEnd(side: Side): void {
    if (!this.#closing && !this.#sentClose(side)) return this.#lost(side, 'lost');
    this.#closedBy ??= side;
    // Half-close goes on (the peer's FIN after its close frame); the other side finishes its writes first. Once
    // ended, end() again only builds an ERR_STREAM_ALREADY_FINISHED (with its stack) for nobody.
    endOnce(side === 'client' ? this.#upstream : this.#client);
  }

  #onClose(side: Side): void {
    const other = side === 'client' ? this.#upstream : this.#client;
    // Closed with no close frame, FIN or error seen (an HTTP/2 stream the client cancelled, a socket cut early).
    if (!other.destroyed && !this.#closing && !this.#sentClose(side)) this.#lost(side, 'lost');
    this.#closedBy ??= side;
    // The other side may still be flushing what this side sent last; end it, and cut it if it lingers.
    if (!other.destroyed) {
      endOnce(other);
      if (!this.#grace) this.#armGrace();
      return;
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#lifetime);
    clearTimeout(this.#grace);
    this.#hooks.onEnd({
      bytesToUpstream: this.#up.bytes,
      bytesToClient: this.#down.bytes,
      closedBy: this.#closedBy ?? 'gateway',
      closeCode: this.#gatewayCode ?? this.#firstCloseCode ?? null,
      reason: this.#reason,
      durationMs: Date.now() - this.#started,
    });
  }
}
